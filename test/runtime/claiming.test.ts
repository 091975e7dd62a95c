/**
 * Which jobs the dispatcher claims, and when: priority, claim position, the poll interval.
 */
import { SqlClient } from "@effect/sql/SqlClient"
import { describe, expect, layer } from "@effect/vitest"
import { Effect, Schema } from "effect"
import * as Job from "../../src/Job.js"
import { engines } from "../support/engines.js"
import { awaitState, startJobs } from "../support/jobs.js"
import { Echo, echo } from "./fixtures.js"

for (const engine of engines) {
  describe(`runtime on ${engine.name}`, () => {
    layer(engine.layer, { timeout: 60_000, excludeTestServices: true })((it) => {
      it.scoped("runs higher-priority jobs first", () =>
        Effect.gen(function* () {
          const order: Array<number> = []
          const Ordered = Job.make("ordered", { args: Schema.Struct({ n: Schema.Number }) })
          const ordered = Ordered.handler(({ args }) => Effect.sync(() => order.push(args.n)))
          const jobs = yield* startJobs({
            handlers: [ordered],
            queues: { default: { concurrency: 1, paused: true } },
          })
          yield* jobs.insert(Ordered, { n: 4 }, { priority: -5 })
          yield* jobs.insert(Ordered, { n: 3 }, { priority: 0 })
          yield* jobs.insert(Ordered, { n: 0 }, { priority: 10 })
          yield* jobs.insert(Ordered, { n: 1 }, { priority: 1 })
          yield* jobs.insert(Ordered, { n: 2 }, { priority: 1 })
          yield* jobs.resumeQueue("default")
          yield* jobs.flush("default")
          // Higher first; equal priorities in the order they were inserted.
          expect(order).toEqual([0, 1, 2, 3, 4])
        }),
      )

      it.scoped(
        "claims jobs that become available before where its claims have reached, when told where",
        () =>
          Effect.gen(function* () {
            const ran: Array<string> = []
            const Tagged = Job.make("tagged", { args: Schema.Struct({ tag: Schema.String }) })
            const tagged = Tagged.handler(({ args }) => Effect.sync(() => ran.push(args.tag)))
            // Polling a minute apart, only the signals' positions can bring these jobs in soon.
            const jobs = yield* startJobs({
              handlers: [tagged],
              queues: { default: { concurrency: 1, pollInterval: "1 minute" } },
            })
            for (const tag of ["a", "b", "c"]) yield* jobs.insert(Tagged, { tag }, { priority: 5 })
            yield* jobs.flush("default")
            const lower = yield* jobs.insert(Tagged, { tag: "priority 1" }, { priority: 1 })
            yield* awaitState(jobs, lower.id, "completed", "5 seconds")
            // Before every job claimed so far in the claim order.
            const higher = yield* jobs.insert(Tagged, { tag: "priority 9" }, { priority: 9 })
            yield* awaitState(jobs, higher.id, "completed", "5 seconds")
            // Due before the jobs inserted after it, which run first: the stager's signal brings
            // the claims back to it.
            const staged = yield* jobs.insert(
              Tagged,
              { tag: "staged" },
              { priority: 5, scheduleIn: "300 millis" },
            )
            yield* Effect.sleep("400 millis")
            const later = yield* jobs.insert(Tagged, { tag: "later" }, { priority: 5 })
            yield* awaitState(jobs, later.id, "completed", "5 seconds")
            yield* awaitState(jobs, staged.id, "completed", "5 seconds")
            expect(ran.slice(0, 5)).toEqual(["a", "b", "c", "priority 1", "priority 9"])
          }),
      )

      it.scoped("claims a job made available without a signal within the poll interval", () =>
        Effect.gen(function* () {
          const sql = yield* SqlClient
          const jobs = yield* startJobs({ handlers: [echo] })
          for (const text of ["one", "two"]) yield* jobs.insert(Echo, { text })
          yield* jobs.flush("default")
          // A job put back by hand with an old due time, as a claim that rolled back leaves
          // one: no signal goes out, and it stands before every job claimed.
          const job = yield* jobs.insert(Echo, { text: "unsignalled" }, { scheduleIn: "1 hour" })
          yield* sql.unsafe(
            `UPDATE ${jobs.schema}.jobs SET state = 'available', scheduled_at = '2000-01-01' WHERE id = $1`,
            [job.id],
          )
          yield* awaitState(jobs, job.id, "completed", "5 seconds")
        }),
      )
    })
  })
}
