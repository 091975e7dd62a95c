/**
 * Claims by id, for the testing layer: the jobs named, if they wait, whatever their queue and
 * due time; finished and running jobs are left alone.
 */
import { describe, expect, layer } from "@effect/vitest"
import { Effect } from "effect"
import { engines } from "../support/engines.js"
import { withStore } from "./support.js"

const newJobs = (state: "available" | "scheduled", queue: string, scheduledAt: Date) => ({
  queue,
  type: "t",
  state,
  priority: 0,
  maxAttempts: 3,
  meta: {},
  scheduledAt,
  args: [{ n: 1 }],
  argsJson: [JSON.stringify({ n: 1 })],
})

for (const engine of engines) {
  describe(`store on ${engine.name}`, () => {
    layer(engine.layer, { timeout: 300_000, excludeTestServices: true })((it) => {
      it.scoped("claims the waiting jobs it is given by id, due or not, and no others", () =>
        Effect.gen(function* () {
          const { store } = yield* withStore
          const now = new Date("2030-01-01T00:00:00Z")
          const [due] = yield* store.insert(newJobs("available", "a", now), now)
          const [later] = yield* store.insert(
            newJobs("scheduled", "b", new Date("2031-01-01T00:00:00Z")),
            now,
          )
          const [other] = yield* store.insert(newJobs("available", "a", now), now)
          const lease = "00000000-0000-4000-8000-000000000001"
          const claimed = yield* store.claimIds([due!.id, later!.id], "node-1", lease, now)
          expect(claimed.map((job) => [job.id, job.state, job.attempt, job.attemptedBy])).toEqual([
            [due!.id, "executing", 1, "node-1"],
            [later!.id, "executing", 1, "node-1"],
          ])
          expect((yield* store.get(other!.id))?.state).toBe("available")
          // Already executing: not claimed again.
          expect(yield* store.claimIds([due!.id], "node-2", lease, now)).toEqual([])
          expect(yield* store.claimIds([], "node-2", lease, now)).toEqual([])
        }),
      )
    })
  })
}
