/**
 * Inserting jobs: scheduling, bad options, the app's transaction, many at once.
 */
import { SqlClient } from "@effect/sql/SqlClient"
import { describe, expect, layer } from "@effect/vitest"
import { Duration, Effect, Either, Metric, Queue, Schema } from "effect"
import { insertedTotal } from "../../src/internal/observer.js"
import * as Job from "../../src/Job.js"
import type * as Jobs from "../../src/Jobs.js"
import { engines } from "../support/engines.js"
import { awaitState, startJobs } from "../support/jobs.js"
import { Echo, echo } from "./fixtures.js"

for (const engine of engines) {
  describe(`runtime on ${engine.name}`, () => {
    layer(engine.layer, { timeout: 60_000, excludeTestServices: true })((it) => {
      it.scoped("runs a scheduled job once it is due, not before", () =>
        Effect.gen(function* () {
          const jobs = yield* startJobs({ handlers: [echo] })
          const job = yield* jobs.insert(Echo, { text: "later" }, { scheduleIn: "400 millis" })
          expect(job.state).toBe("scheduled")
          yield* Effect.sleep("150 millis")
          expect((yield* jobs.get(job.id)).state).toBe("scheduled")
          const done = yield* awaitState(jobs, job.id, "completed")
          // scheduledAt is the database's time and attemptedAt this node's: on one machine they
          // agree within a few milliseconds (PGlite's clock runs on a timer of its own).
          expect(done.attemptedAt!.getTime()).toBeGreaterThanOrEqual(job.scheduledAt.getTime() - 50)
        }),
      )

      it.scoped("rejects bad insert options with a typed error and writes nothing", () =>
        Effect.gen(function* () {
          const jobs = yield* startJobs({ handlers: [echo], maxPayloadBytes: 100 })
          const attempts: Array<Effect.Effect<unknown, Jobs.InsertError>> = [
            jobs.insert(Echo, { text: "x" }, { priority: -32769 }),
            jobs.insert(Echo, { text: "x" }, { priority: 1.5 }),
            jobs.insert(Echo, { text: "x" }, { queue: "bad queue!" }),
            jobs.insert(Echo, { text: "x" }, { maxAttempts: 0 }),
            jobs.insert(Echo, { text: "x" }, { scheduleAt: new Date("nonsense") }),
            jobs.insert(Echo, { text: "x".repeat(200) }),
            jobs.insertMany(Echo, [{ text: "fine" }, { text: "y".repeat(200) }]),
          ]
          const tags: Array<string> = []
          for (const attempt of attempts) {
            const result = yield* Effect.either(attempt)
            tags.push(Either.isLeft(result) ? result.left._tag : "Right")
          }
          expect(tags).toEqual([
            "InvalidJobOptions",
            "InvalidJobOptions",
            "InvalidJobOptions",
            "InvalidJobOptions",
            "InvalidJobOptions",
            "PayloadTooLarge",
            "PayloadTooLarge",
          ])
          expect(yield* jobs.list()).toHaveLength(0)
          // @ts-expect-error: args are stored as JSON, so the Schema must encode to JSON
          Job.make("dated", { args: Schema.Struct({ at: Schema.DateFromSelf }) })
          const infinite = yield* Effect.flip(
            jobs.insert(Echo, { text: "x" }, { scheduleIn: Duration.infinity }),
          )
          expect(infinite._tag).toBe("InvalidJobOptions")
          const smuggled = yield* Effect.flip(jobs.insert(Echo, { text: 1n as unknown as string }))
          expect(smuggled._tag).toBe("InvalidJobArgs")
          // @ts-expect-error: args must match the definition's Schema
          const wrong = yield* Effect.either(jobs.insert(Echo, { txt: "typo" }))
          expect(Either.isLeft(wrong) && wrong.left._tag).toBe("InvalidJobArgs")
        }),
      )

      it.scoped("inserts inside the app's transaction: committed with it, rolled back with it", () =>
        Effect.gen(function* () {
          const sql = yield* SqlClient
          const jobs = yield* startJobs({
            handlers: [echo],
            queues: { default: { concurrency: 1, paused: true } },
          })
          yield* sql.unsafe(`CREATE TABLE ${jobs.schema}.orders (id serial PRIMARY KEY, note text)`)
          const events = yield* jobs.subscribe
          const insertedMetric = insertedTotal.pipe(
            Metric.tagged("queue", "default"),
            Metric.tagged("type", Echo.type),
          )
          const before = (yield* Metric.value(insertedMetric)).count
          const rolledBack = yield* sql
            .withTransaction(
              Effect.gen(function* () {
                yield* sql.unsafe(`INSERT INTO ${jobs.schema}.orders (note) VALUES ('lost')`)
                yield* jobs.insert(Echo, { text: "rolled back" })
                return yield* Effect.fail("abort")
              }),
            )
            .pipe(Effect.flip)
          expect(rolledBack).toBe("abort")
          const committed = yield* sql.withTransaction(
            Effect.zipRight(
              sql.unsafe(`INSERT INTO ${jobs.schema}.orders (note) VALUES ('kept')`),
              jobs.insert(Echo, { text: "committed" }),
            ),
          )
          // Announced once its transaction committed; the rolled-back one, which ended before,
          // never: neither its event nor its count.
          const announced = yield* Queue.take(events)
          expect([announced._tag, announced.id]).toEqual(["Inserted", committed.id])
          expect((yield* Metric.value(insertedMetric)).count).toBe(before + 1)
          expect(yield* Queue.size(events)).toBe(0)
          const listed = yield* jobs.list()
          expect(listed.map((j) => (j.args as { text: string }).text)).toEqual(["committed"])
          const orders = yield* sql.unsafe<{ note: string }>(`SELECT note FROM ${jobs.schema}.orders`)
          expect(orders.map((o) => o.note)).toEqual(["kept"])
        }),
      )

      it.scoped("inserts thousands of jobs with one call and runs them all", () =>
        Effect.gen(function* () {
          const Noop = Job.make("noop", { args: Schema.Struct({ n: Schema.Number }) })
          const jobs = yield* startJobs({
            handlers: [Noop.handler(() => Effect.void)],
            queues: { default: 20 },
          })
          const inserted = yield* jobs.insertMany(
            Noop,
            Array.from({ length: 2000 }, (_, n) => ({ n })),
          )
          expect(inserted).toHaveLength(2000)
          yield* jobs.flush("default")
          const info = yield* jobs.queueInfo("default")
          expect(info.states.completed.count).toBe(2000)
          expect(info.states.available.count + info.states.executing.count).toBe(0)
        }),
      )
    })
  })
}
