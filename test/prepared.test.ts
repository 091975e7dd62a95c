/**
 * The per-job statements on PostgreSQL run as named prepared statements: planned once per
 * connection, then reused. The runtime works the same with them turned off.
 */
import { SqlError } from "@effect/sql/SqlError"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Schema } from "effect"
import Pg from "pg"
import { fromPool } from "../src/internal/prepared.js"
import * as Job from "../src/Job.js"
import * as JobsPg from "../src/JobsPg.js"
import { postgresAvailable, postgresUrl } from "./support/engines.js"
import { awaitState, startJobs } from "./support/jobs.js"

const Echo = Job.make("echo", { args: Schema.Struct({ text: Schema.String }) })

const onePool = Effect.acquireRelease(
  Effect.sync(() => new Pg.Pool({ connectionString: postgresUrl, max: 1 })),
  (pool) => Effect.promise(() => pool.end()),
)

describe.runIf(postgresAvailable)("prepared statements", () => {
  it.scoped("a statement is prepared once per connection under one name, and answers each call", () =>
    Effect.gen(function* () {
      const pool = yield* onePool
      const prepared = fromPool(pool)
      const text = "SELECT $1::integer + 1 AS next"
      expect(yield* prepared.query(text, [1])).toEqual([{ next: 2 }])
      expect(yield* prepared.query(text, [41])).toEqual([{ next: 42 }])
      // One connection, so this session is the one that prepared it.
      const statements = yield* Effect.promise(() =>
        pool.query("SELECT name, statement FROM pg_prepared_statements WHERE name LIKE 'effect_jobs_%'"),
      )
      expect(statements.rows).toEqual([
        { name: expect.stringMatching(/^effect_jobs_[0-9a-f]{24}$/), statement: text },
      ])
    }),
  )

  it.scoped("a statement the server refuses fails with a SqlError", () =>
    Effect.gen(function* () {
      const prepared = fromPool(yield* onePool)
      const error = yield* Effect.flip(prepared.query("SELECT * FROM no_such_table", []))
      expect(error).toBeInstanceOf(SqlError)
      expect(String((error.cause as Error).message)).toContain("no_such_table")
    }),
  )

  it.live("jobs run with prepared statements turned off", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const jobs = yield* startJobs({ handlers: [Echo.handler(() => Effect.void)] })
        const job = yield* jobs.insert(Echo, { text: "unprepared" })
        expect((yield* awaitState(jobs, job.id, "completed")).attempt).toBe(1)
      }),
    ).pipe(Effect.provide(JobsPg.layer({ url: postgresUrl, preparedStatements: false }))),
  )
})
