/**
 * Queues at runtime: pause, resume, scale, start, stop, dead-letter queues.
 */
import { describe, expect, layer } from "@effect/vitest"
import { Deferred, Effect, Schema } from "effect"
import * as Job from "../../src/Job.js"
import { engines } from "../support/engines.js"
import { awaitState, eventually, startJobs } from "../support/jobs.js"
import { Boom, Echo, echo } from "./fixtures.js"

for (const engine of engines) {
  describe(`runtime on ${engine.name}`, () => {
    layer(engine.layer, { timeout: 60_000, excludeTestServices: true })((it) => {
      it.scoped("pauses, resumes and scales a queue, and reports it", () =>
        Effect.gen(function* () {
          const gate = yield* Deferred.make<void>()
          const Gated = Job.make("gated", { args: Schema.Struct({}) })
          const jobs = yield* startJobs({
            handlers: [Gated.handler(() => Deferred.await(gate))],
            queues: { default: 2 },
          })
          yield* jobs.pauseQueue("default")
          yield* jobs.insertMany(
            Gated,
            Array.from({ length: 5 }, () => ({})),
          )
          yield* Effect.sleep("300 millis")
          expect((yield* jobs.queueInfo("default")).states.available.count).toBe(5)
          yield* jobs.resumeQueue("default")
          const running = yield* eventually(
            Effect.flatMap(jobs.queueInfo("default"), (info) =>
              info.running === 2 ? Effect.succeed(info) : Effect.fail("not yet"),
            ),
          )
          expect(running.limit).toBe(2)
          expect(running.states.executing.count).toBe(2)
          yield* jobs.scaleQueue("default", 5)
          yield* eventually(
            Effect.flatMap(jobs.queueInfo("default"), (info) =>
              info.running === 5 ? Effect.void : Effect.fail("not yet"),
            ),
          )
          yield* Deferred.succeed(gate, undefined)
          yield* jobs.drain("default")
          expect((yield* jobs.queueInfo("default")).states.completed.count).toBe(5)
          expect(yield* jobs.queues).toEqual([{ name: "default", limit: 5, running: 0, paused: false }])
          // Asking twice answers twice.
          expect(yield* jobs.queues).toHaveLength(1)
          expect((yield* Effect.flip(jobs.pauseQueue("nope", { localOnly: true })))._tag).toBe(
            "QueueNotFound",
          )
          expect((yield* Effect.flip(jobs.scaleQueue("default", 0)))._tag).toBe("InvalidJobOptions")
        }),
      )

      it.scoped("starts and stops queues at runtime", () =>
        Effect.gen(function* () {
          const jobs = yield* startJobs({ handlers: [echo], queues: {} })
          const job = yield* jobs.insert(Echo, { text: "late queue" }, { queue: "mail" })
          yield* Effect.sleep("200 millis")
          expect((yield* jobs.get(job.id)).state).toBe("available")
          yield* jobs.startQueue("mail", 3)
          expect((yield* Effect.flip(jobs.startQueue("mail", 3)))._tag).toBe("QueueAlreadyRunning")
          yield* awaitState(jobs, job.id, "completed")
          yield* jobs.stopQueue("mail")
          expect(yield* jobs.queues).toEqual([])
          const after = yield* jobs.insert(Echo, { text: "nobody runs me" }, { queue: "mail" })
          yield* Effect.sleep("300 millis")
          expect((yield* jobs.get(after.id)).state).toBe("available")
        }),
      )

      it.scoped("sends a queue's discarded jobs to its dead-letter queue, history kept", () =>
        Effect.gen(function* () {
          const Fragile = Job.make("fragile", { args: Schema.Struct({}), maxAttempts: 1, queue: "main" })
          const fragile = Fragile.handler(({ job }) =>
            job.queue === "main" ? Effect.fail(new Boom({ message: "broken" })) : Effect.void,
          )
          const jobs = yield* startJobs({
            handlers: [fragile],
            queues: { main: { concurrency: 1, deadLetter: "dead" }, dead: 1 },
          })
          const job = yield* jobs.insert(Fragile, {})
          const done = yield* awaitState(jobs, job.id, "completed")
          expect(done.queue).toBe("dead")
          expect(done.meta).toEqual({ deadLetteredFrom: "main" })
          expect(done.attempt).toBe(1)
          expect(done.errors.map((e) => [e.attempt, e.message])).toEqual([[1, "broken"]])
          const own = yield* Effect.flip(
            startJobs({ queues: { loop: { concurrency: 1, deadLetter: "loop" } } }),
          )
          expect((own as { _tag: string })._tag).toBe("InvalidConfig")
          const cycle = yield* Effect.flip(
            startJobs({
              queues: { a: { concurrency: 1, deadLetter: "b" }, b: { concurrency: 1, deadLetter: "a" } },
            }),
          )
          expect((cycle as { message: string }).message).toContain("cycle: a → b → a")
          // Queues started later are checked against the running ones too.
          yield* jobs.startQueue("p", { concurrency: 1, deadLetter: "q" })
          const later = yield* Effect.flip(jobs.startQueue("q", { concurrency: 1, deadLetter: "p" }))
          expect(later.message).toContain("cycle: p → q → p")
        }),
      )
    })
  })
}
