/**
 * Conformance of the queues table: each queue's cluster-wide pause and scale.
 */
import { describe, expect, layer } from "@effect/vitest"
import { Effect } from "effect"
import { engines } from "../support/engines.js"
import { withStore } from "./support.js"

for (const engine of engines) {
  describe(`store queues on ${engine.name}`, () => {
    layer(engine.layer, { timeout: 60_000, excludeTestServices: true })((it) => {
      it.scoped("a queue never paused nor scaled reads as running and unscaled", () =>
        Effect.gen(function* () {
          const { store, rows } = yield* withStore
          expect(yield* store.queueState("q")).toEqual({
            paused: false,
            concurrency: null,
            pausedOrResumedAt: null,
          })
          expect(yield* store.isPaused("q")).toBe(false)
          expect(yield* rows("queues")).toEqual([])
        }),
      )

      it.scoped("pause and resume are stored with their time; a scale keeps them", () =>
        Effect.gen(function* () {
          const { store, rows } = yield* withStore
          yield* store.setConcurrency("q", 7)
          const scaled = yield* store.queueState("q")
          // A scale alone is no pause or resume.
          expect(scaled).toEqual({ paused: false, concurrency: 7, pausedOrResumedAt: null })
          yield* store.setPaused("q", true)
          const paused = yield* store.queueState("q")
          expect(paused.paused).toBe(true)
          expect(paused.concurrency).toBe(7)
          expect(paused.pausedOrResumedAt).not.toBe(null)
          yield* store.setConcurrency("q", 3)
          const rescaled = yield* store.queueState("q")
          expect(rescaled).toEqual({ ...paused, concurrency: 3 })
          yield* store.setPaused("q", false)
          expect(yield* store.isPaused("q")).toBe(false)
          const [row] = yield* rows("queues")
          expect([row.name, row.paused, Number(row.concurrency)]).toEqual(["q", false, 3])
          expect(yield* store.queueState("other")).toEqual({
            paused: false,
            concurrency: null,
            pausedOrResumedAt: null,
          })
        }),
      )
    })
  })
}
