/**
 * When an inserted job is due, and which unique period it falls in, are read by other nodes:
 * an inserting node whose clock is off must not shift them.
 */
import { SqlClient } from "@effect/sql/SqlClient"
import { describe, expect, layer } from "@effect/vitest"
import { Effect, Schema } from "effect"
import * as Job from "../../src/Job.js"
import { type Engine, engines } from "../support/engines.js"
import { startJobs } from "../support/jobs.js"
import { skewedClock } from "../support/skewedClock.js"

const Remind = Job.make("remind", { args: Schema.Struct({ user: Schema.String }) })
const hour = 3_600_000

const databaseNow = Effect.flatMap(SqlClient, (sql) =>
  Effect.map(
    sql.unsafe<{ now: number }>(`SELECT floor(extract(epoch FROM clock_timestamp()) * 1000)::float8 AS now`),
    (rows) => Number(rows[0]!.now),
  ),
)

const insertTime = (engine: Engine) =>
  describe(`insert times on ${engine.name}`, () => {
    layer(engine.layer, { timeout: 60_000, excludeTestServices: true })((it) => {
      it.scoped("scheduleIn counts from the database's time, not from a skewed node's clock", () =>
        Effect.gen(function* () {
          const jobs = yield* startJobs({ queues: {} })
          const job = yield* jobs
            .insert(Remind, { user: "ada" }, { scheduleIn: "30 seconds" })
            .pipe(Effect.withClock(skewedClock(hour)))
          const now = yield* databaseNow
          expect(job.state).toBe("scheduled")
          const dueIn = job.scheduledAt.getTime() - now
          expect(dueIn).toBeGreaterThan(20_000)
          expect(dueIn).toBeLessThanOrEqual(30_000)
        }),
      )

      it.scoped(
        "a scheduleAt still in the future is scheduled, however far ahead the node's clock runs",
        () =>
          Effect.gen(function* () {
            const jobs = yield* startJobs({ queues: {} })
            const at = new Date((yield* databaseNow) + 30_000)
            const job = yield* jobs
              .insert(Remind, { user: "ada" }, { scheduleAt: at })
              .pipe(Effect.withClock(skewedClock(hour)))
            expect(job.state).toBe("scheduled")
            expect(job.scheduledAt.getTime()).toBe(at.getTime())
          }),
      )

      it.scoped("two nodes an hour apart agree on a unique period", () =>
        Effect.gen(function* () {
          const jobs = yield* startJobs({ queues: {} })
          const unique = { period: "1 hour" } as const
          const first = yield* jobs.insert(Remind, { user: "ada" }, { unique })
          const second = yield* jobs
            .insert(Remind, { user: "ada" }, { unique })
            .pipe(Effect.withClock(skewedClock(hour)))
          expect(first.conflict).toBe(false)
          expect(second.conflict).toBe(true)
          expect(second.id).toBe(first.id)
        }),
      )
    })
  })

for (const engine of engines) insertTime(engine)
