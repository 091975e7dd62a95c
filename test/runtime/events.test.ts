/**
 * Events subscribers hear.
 */
import { describe, expect, layer } from "@effect/vitest"
import { Effect, Fiber, Metric, Queue, Stream } from "effect"
import { runningGauge } from "../../src/internal/observer.js"
import { engines } from "../support/engines.js"
import { eventually, interruptibleJob, startJobs } from "../support/jobs.js"
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

      it.scoped(
        "the node running a job cancelled on another node publishes Cancelled; its running gauge follows",
        () =>
          Effect.gen(function* () {
            const queue = `gauge_${engine.name}`
            const blocked = yield* interruptibleJob(`blocked_${engine.name}`)
            const runner = yield* startJobs({
              handlers: [blocked.handler],
              queues: { [queue]: 2 },
              heartbeatInterval: "100 millis",
            })
            const other = yield* startJobs({ schema: runner.schema, queues: {} })
            const events = yield* runner.subscribe
            const job = yield* runner.insert(blocked.definition, {}, { queue })
            yield* blocked.started
            const running = Metric.value(Metric.tagged(runningGauge, "queue", queue))
            yield* eventually(Effect.flatMap(running, (g) => (g.value === 1 ? Effect.void : Effect.fail(g))))
            yield* other.cancel(job.id)
            yield* blocked.interrupted
            const seen = [yield* Queue.take(events), yield* Queue.take(events), yield* Queue.take(events)]
            expect(seen.map((e) => [e._tag, e.id])).toEqual([
              ["Inserted", job.id],
              ["Started", job.id],
              ["Cancelled", job.id],
            ])
            expect(seen[2]).toMatchObject({
              queue,
              type: blocked.definition.type,
              reason: "cancelled on request",
            })
            yield* eventually(Effect.flatMap(running, (g) => (g.value === 0 ? Effect.void : Effect.fail(g))))
          }),
      )
    })
  })
}
