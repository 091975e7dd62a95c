/**
 * Pruning finished jobs past their retention.
 */
import { describe, expect, layer } from "@effect/vitest"
import { Effect, Either, Queue } from "effect"
import { engines } from "../support/engines.js"
import { awaitState, eventually, startJobs } from "../support/jobs.js"
import { Echo, echo } from "./fixtures.js"

for (const engine of engines) {
  describe(`runtime on ${engine.name}`, () => {
    layer(engine.layer, { timeout: 60_000, excludeTestServices: true })((it) => {
      it.scoped("prunes finished jobs once their retention has passed", () =>
        Effect.gen(function* () {
          const jobs = yield* startJobs({
            handlers: [echo],
            prune: { completed: "200 millis", interval: "100 millis" },
          })
          const job = yield* jobs.insert(Echo, { text: "short-lived" })
          yield* awaitState(jobs, job.id, "completed")
          yield* eventually(
            Effect.flatMap(Effect.either(jobs.get(job.id)), (result) =>
              Either.isLeft(result) && result.left._tag === "JobNotFound"
                ? Effect.void
                : Effect.fail("still there"),
            ),
          )
        }),
      )

      it.scoped(
        "keeps no completed job when their retention is zero, and still reports each completion",
        () =>
          Effect.gen(function* () {
            const jobs = yield* startJobs({ handlers: [echo], prune: { completed: 0 } })
            const events = yield* jobs.subscribe
            const job = yield* jobs.insert(Echo, { text: "gone when done" })
            const seen: Array<string> = []
            while (!seen.includes("Completed")) seen.push((yield* Queue.take(events))._tag)
            // The inserting fiber publishes Inserted after its statement returns, so a local
            // dispatcher quick enough can publish Started first; only Started → Completed is ordered.
            expect([...seen].sort()).toEqual(["Completed", "Inserted", "Started"])
            expect(seen.indexOf("Started")).toBeLessThan(seen.indexOf("Completed"))
            yield* eventually(
              Effect.flatMap(Effect.either(jobs.get(job.id)), (result) =>
                Either.isLeft(result) && result.left._tag === "JobNotFound"
                  ? Effect.void
                  : Effect.fail("still there"),
              ),
            )
            expect((yield* jobs.queueInfo("default")).states.completed.count).toBe(0)
          }),
      )
    })
  })
}
