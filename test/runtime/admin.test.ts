/**
 * The admin operations: cancel, retry, delete, list.
 */
import { describe, expect, layer } from "@effect/vitest"
import { Deferred, Effect } from "effect"
import { engines } from "../support/engines.js"
import { awaitState, interruptibleJob, startJobs } from "../support/jobs.js"
import { Echo, echo, Flaky, flaky } from "./fixtures.js"

for (const engine of engines) {
  describe(`runtime on ${engine.name}`, () => {
    layer(engine.layer, { timeout: 60_000, excludeTestServices: true })((it) => {
      it.scoped("cancels an executing job by interrupting its handler", () =>
        Effect.gen(function* () {
          const { definition: Long, handler: long, started, interrupted } = yield* interruptibleJob("long")
          const jobs = yield* startJobs({ handlers: [long] })
          const job = yield* jobs.insert(Long, {})
          yield* Deferred.await(started)
          const cancelled = yield* jobs.cancel(job.id)
          expect(cancelled.state).toBe("cancelled")
          yield* Deferred.await(interrupted)
          yield* jobs.drain("default")
          expect((yield* jobs.get(job.id)).state).toBe("cancelled")
          const conflict = yield* Effect.flip(jobs.cancel(job.id))
          expect(conflict._tag).toBe("JobStateConflict")
          expect((yield* Effect.flip(jobs.cancel(987654)))._tag).toBe("JobNotFound")
        }),
      )

      it.scoped("retries a discarded job by hand and deletes finished ones", () =>
        Effect.gen(function* () {
          const jobs = yield* startJobs({ handlers: [flaky] })
          const job = yield* jobs.insert(Flaky, { failUntil: 4 }, { maxAttempts: 1 })
          yield* awaitState(jobs, job.id, "discarded")
          const retried = yield* jobs.retry(job.id)
          expect(retried.state).toBe("available")
          expect(retried.maxAttempts).toBe(2)
          const again = yield* awaitState(jobs, job.id, "discarded")
          expect(again.attempt).toBe(2)
          yield* jobs.delete(job.id)
          expect((yield* Effect.flip(jobs.get(job.id)))._tag).toBe("JobNotFound")
        }),
      )

      it.scoped("lists jobs by queue, state and type, newest first, in pages", () =>
        Effect.gen(function* () {
          const jobs = yield* startJobs({ handlers: [echo], queues: {} })
          for (let n = 0; n < 5; n++) yield* jobs.insert(Echo, { text: `a${n}` }, { queue: "a" })
          yield* jobs.insert(Echo, { text: "b" }, { queue: "b", scheduleIn: "1 hour" })
          const page1 = yield* jobs.list({ queue: "a", limit: 2 })
          const page2 = yield* jobs.list({ queue: "a", limit: 2, offset: 2 })
          expect([...page1, ...page2].map((j) => (j.args as any).text)).toEqual(["a4", "a3", "a2", "a1"])
          expect((yield* jobs.list({ state: "scheduled" })).map((j) => j.queue)).toEqual(["b"])
          expect(yield* jobs.list({ type: "other" })).toEqual([])
          expect((yield* Effect.flip(jobs.list({ state: "bogus" as any })))._tag).toBe("InvalidJobOptions")
          expect((yield* Effect.flip(jobs.list({ limit: 0 })))._tag).toBe("InvalidJobOptions")
        }),
      )
    })
  })
}
