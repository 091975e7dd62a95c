/**
 * PostgreSQL going away and coming back, played by a proxy the test cuts and restores.
 */

import { SqlClient } from "@effect/sql/SqlClient"
import type { PgClient } from "@effect/sql-pg"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Layer, Schema, type Scope } from "effect"
import * as Job from "../src/Job.js"
import * as JobsPg from "../src/JobsPg.js"
import type { Listener } from "../src/Listener.js"
import { dropSchema, freshSchema, postgresAvailable, postgresUrl } from "./support/engines.js"
import { eventually, startJobs } from "./support/jobs.js"
import { makeProxy } from "./support/proxy.js"

const Work = Job.make("work", { args: Schema.Struct({ n: Schema.Number }), backoff: "50 millis" })
const work = Work.handler(() => Effect.sleep("5 millis"))

const target = new URL(postgresUrl)

const throughProxy = <R>(
  body: (proxy: Effect.Effect.Success<ReturnType<typeof makeProxy>>) => Effect.Effect<void, unknown, R>,
): Effect.Effect<void, unknown, Scope.Scope | Exclude<R, SqlClient | Listener | PgClient.PgClient>> =>
  Effect.gen(function* () {
    const proxy = yield* makeProxy({ host: target.hostname, port: Number(target.port || 5432) })
    const url = new URL(postgresUrl)
    url.port = String(proxy.port)
    const engine = JobsPg.layer({ url: url.toString(), connectTimeout: "1 second", maxConnections: 4 })
    yield* body(proxy).pipe(Effect.provide(engine))
  })

describe.runIf(postgresAvailable)("database trouble on postgres", () => {
  it.live(
    "insert while the database is unreachable fails with a typed DatabaseError and runs on once it is back",
    () =>
      Effect.scoped(
        throughProxy((proxy) =>
          Effect.gen(function* () {
            const jobs = yield* startJobs({ handlers: [work] })
            yield* proxy.cut
            const error = yield* Effect.flip(jobs.insert(Work, { n: 1 }))
            expect(error._tag).toBe("DatabaseError")
            expect(error.message).toContain("inserting jobs failed in the database")
            yield* proxy.restore
            const job = yield* eventually(jobs.insert(Work, { n: 2 }))
            yield* eventually(
              Effect.flatMap(jobs.get(job.id), (j) =>
                j.state === "completed" ? Effect.void : Effect.fail("wait"),
              ),
            )
          }),
        ),
      ),
    60_000,
  )

  it.live(
    "dispatchers keep retrying while the database is gone and finish every job when it returns",
    () =>
      Effect.scoped(
        Effect.gen(function* () {
          const direct = yield* Layer.build(JobsPg.layer({ url: postgresUrl }))
          const sql = direct.unsafeMap.get(SqlClient.key) as SqlClient
          const schema = freshSchema()
          yield* Effect.addFinalizer(() => dropSchema(sql, schema))
          yield* throughProxy((proxy) =>
            Effect.gen(function* () {
              const jobs = yield* startJobs({ schema, handlers: [work], queues: { default: 5 } })
              yield* jobs.insertMany(
                Work,
                Array.from({ length: 300 }, (_, n) => ({ n })),
              )
              yield* Effect.sleep("100 millis")
              yield* proxy.cut
              yield* Effect.sleep("2 seconds")
              yield* proxy.restore
              yield* eventually(
                Effect.flatMap(jobs.queueInfo("default"), (info) =>
                  info.states.completed.count === 300 ? Effect.void : Effect.fail("wait"),
                ),
                "30 seconds",
              )
            }),
          )
          // Nothing was lost or left behind: every job completed exactly once.
          const rows = yield* sql.unsafe<{ state: string; attempt: number; count: number }>(
            `SELECT state, attempt, count(*)::int AS count FROM ${schema}.jobs GROUP BY state, attempt`,
          )
          expect(rows.map((r) => [r.state, Number(r.attempt), Number(r.count)])).toEqual([
            ["completed", 1, 300],
          ])
        }),
      ),
    60_000,
  )
})
