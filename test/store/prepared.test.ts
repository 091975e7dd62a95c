/**
 * The per-job statements on PostgreSQL run as named prepared statements: planned once per
 * connection, then reused. The runtime works the same with them turned off.
 */

import { SqlClient } from "@effect/sql/SqlClient"
import { SqlError } from "@effect/sql/SqlError"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Schema } from "effect"
import Pg from "pg"
import { migrate } from "../../src/internal/store/migrations.js"
import { fromPool } from "../../src/internal/store/prepared.js"
import * as Store from "../../src/internal/store/store.js"
import * as Job from "../../src/Job.js"
import * as JobsPg from "../../src/JobsPg.js"
import { dropSchema, freshSchema, postgresAvailable, postgresUrl } from "../support/engines.js"
import { awaitState, startJobs } from "../support/jobs.js"
import { insertNoops } from "../support/store.js"

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

  // A connection keeps the generic plan it made first. Made while the table was small, an
  // outcome write that read and hashed the whole table slowed down as the table grew, until
  // an ANALYZE made it again. The plan is forced generic here, as it becomes on its own after
  // a few calls, so that the small table's plan is the one kept.
  it.live("outcome writes look jobs up by id however small the table was when they were planned", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const sql = yield* SqlClient
        const pool = yield* onePool
        const one = (text: string, values: Array<unknown> = []) =>
          Effect.promise(() => pool.query(text, values)).pipe(Effect.map((r) => r.rows))
        yield* one("SET plan_cache_mode = force_generic_plan")
        for (const keepCompleted of [true, false]) {
          const schema = freshSchema()
          yield* Effect.addFinalizer(() => dropSchema(sql, schema))
          yield* migrate(sql, schema)
          yield* sql.unsafe(`ANALYZE ${schema}.jobs`)
          const store = Store.make(sql, schema, fromPool(pool), keepCompleted)
          const seqScans = Effect.zipRight(
            one("SELECT pg_stat_force_next_flush()"),
            one(
              `SELECT seq_scan::integer AS n FROM pg_stat_user_tables WHERE schemaname = $1 AND relname = 'jobs'`,
              [schema],
            ),
          ).pipe(Effect.map((rows) => rows[0].n as number))
          const runBatch = (size: number, batches: number) =>
            Effect.gen(function* () {
              yield* insertNoops(store, size * batches)
              const lease = "00000000-0000-4000-8000-0000000000aa"
              const claimed = yield* store.claim("q", size * batches, "n", lease, new Date())
              let written = 0
              for (let b = 0; b < batches; b++) {
                const outcomes = claimed.slice(b * size, (b + 1) * size).map((job, i) => ({
                  kind: "completed" as const,
                  id: job.id,
                  lease,
                  // Half with a result, half without: both outcome statements are used.
                  result: i % 2 === 0 ? null : { n: i },
                }))
                written += (yield* store.finish(outcomes, new Date())).size
              }
              return written
            })
          // Planned while the table holds a handful of jobs ...
          expect(yield* runBatch(2, 3)).toBe(6)
          const before = yield* seqScans
          // ... and used when it holds thousands.
          expect(yield* runBatch(500, 10)).toBe(5_000)
          expect((yield* seqScans) - before).toBe(0)
        }
      }),
    ).pipe(Effect.provide(JobsPg.layer({ url: postgresUrl }))),
  )

  // An insert may be part of the app's transaction, which only the SqlClient's connection
  // holds; outside one it runs prepared like the per-job statements.
  it.scoped(
    "an insert is prepared outside a transaction and runs on the transaction's connection inside one",
    () =>
      Effect.gen(function* () {
        const sql = yield* SqlClient
        const pool = yield* onePool
        const schema = freshSchema()
        yield* Effect.addFinalizer(() => dropSchema(sql, schema))
        yield* migrate(sql, schema)
        const store = Store.make(sql, schema, fromPool(pool))
        const preparedInserts = Effect.promise(() =>
          pool.query(
            `SELECT count(*)::integer AS n FROM pg_prepared_statements WHERE statement LIKE 'INSERT INTO ${schema}.jobs%'`,
          ),
        ).pipe(Effect.map((r) => r.rows[0].n as number))
        const stored = sql
          .unsafe<{ n: number }>(`SELECT count(*)::integer AS n FROM ${schema}.jobs`)
          .pipe(Effect.map((rows) => rows[0]!.n))

        yield* insertNoops(store, 2)
        expect(yield* preparedInserts).toBe(1)
        expect(yield* stored).toBe(2)

        const rolledBack = yield* sql
          .withTransaction(Effect.zipRight(insertNoops(store, 3), Effect.fail("abort" as const)))
          .pipe(Effect.flip)
        expect(rolledBack).toBe("abort")
        expect(yield* stored).toBe(2)
      }).pipe(Effect.provide(JobsPg.layer({ url: postgresUrl }))),
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
