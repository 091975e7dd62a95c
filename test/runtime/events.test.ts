/**
 * Events subscribers hear.
 */
import { describe, expect, layer } from "@effect/vitest"
import { Effect, Fiber, Queue, Stream } from "effect"
import { engines } from "../support/engines.js"
import { startJobs } from "../support/jobs.js"
import { Echo, echo, Flaky, flaky } from "./fixtures.js"

for (const engine of engines) {
  describe(`runtime on ${engine.name}`, () => {
    layer(engine.layer, { timeout: 60_000, excludeTestServices: true })((it) => {
      it.scoped("publishes lifecycle events in order", () =>
        Effect.gen(function* () {
          const jobs = yield* startJobs({ handlers: [flaky] })
          const collected = yield* jobs.events.pipe(
            Stream.filter((e) => e._tag !== "Inserted"),
            Stream.take(4),
            Stream.runCollect,
            Effect.fork,
          )
          yield* Effect.sleep("50 millis")
          yield* jobs.insert(Flaky, { failUntil: 2 })
          const events = yield* Fiber.join(collected)
          expect(Array.from(events, (e) => e._tag)).toEqual(["Started", "Failed", "Started", "Completed"])
        }),
      )

      it.scoped("tells subscribers about cancels made through the API, and counts queues not run here", () =>
        Effect.gen(function* () {
          const jobs = yield* startJobs({ handlers: [echo], queues: {} })
          const events = yield* jobs.subscribe
          const job = yield* jobs.insert(Echo, { text: "never runs" }, { queue: "elsewhere" })
          yield* jobs.cancel(job.id)
          const seen = [yield* Queue.take(events), yield* Queue.take(events)]
          expect(seen.map((e) => [e._tag, e.id])).toEqual([
            ["Inserted", job.id],
            ["Cancelled", job.id],
          ])
          const info = yield* jobs.queueInfo("elsewhere")
          expect(info).toMatchObject({ runningHere: false, running: 0, limit: 0 })
          expect(info.states.cancelled.count).toBe(1)
          expect((yield* Effect.flip(jobs.queueInfo("not a queue!")))._tag).toBe("QueueNotFound")
        }),
      )
    })
  })
}
