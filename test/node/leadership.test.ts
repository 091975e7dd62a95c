import { describe, expect, it } from "@effect/vitest"
import { Duration, Effect, Fiber, TestClock } from "effect"
import * as Leadership from "../../src/internal/node/leadership.js"
import type { Store } from "../../src/internal/store/store.js"

/** The leader row in memory: one holder, whose claim the store grants while it answers `true`. */
const fakeLeaderRow = () => {
  const state = { grant: true, elections: 0, resigned: [] as Array<string> }
  const store = {
    elect: (_node: string, _termMillis: number) =>
      Effect.sync(() => {
        state.elections++
        return state.grant
      }),
    resign: (node: string) =>
      Effect.sync(() => {
        state.resigned.push(node)
      }),
  } as unknown as Store
  return { state, store }
}

const interval = Duration.seconds(5)

describe("leadership", () => {
  it.scoped("leads once elected, and renews its term every interval", () =>
    Effect.gen(function* () {
      const { state, store } = fakeLeaderRow()
      const leadership = Leadership.make(store, "a", interval)
      expect(yield* leadership.isLeader).toBe(false)
      yield* Effect.forkScoped(leadership.run)
      yield* TestClock.adjust("1 millis")
      expect(yield* leadership.isLeader).toBe(true)
      yield* TestClock.adjust("20 seconds")
      expect(state.elections).toBe(5)
      expect(yield* leadership.isLeader).toBe(true)
    }),
  )

  it.scoped("stops leading at once when the store does not grant the term", () =>
    Effect.gen(function* () {
      const { state, store } = fakeLeaderRow()
      const leadership = Leadership.make(store, "a", interval)
      yield* Effect.forkScoped(leadership.run)
      yield* TestClock.adjust("1 millis")
      expect(yield* leadership.isLeader).toBe(true)
      state.grant = false
      yield* TestClock.adjust("5 seconds")
      expect(yield* leadership.isLeader).toBe(false)
    }),
  )

  it.scoped("counts itself leader no longer than its term when it cannot renew", () =>
    Effect.gen(function* () {
      const { store } = fakeLeaderRow()
      const leadership = Leadership.make(store, "a", interval)
      // One election, then no more (as if every renewal hung): the term is 1.5 intervals.
      const fiber = yield* Effect.forkScoped(leadership.run)
      yield* TestClock.adjust("1 millis")
      expect(yield* leadership.isLeader).toBe(true)
      yield* Fiber.interrupt(fiber)
      yield* TestClock.adjust("7 seconds")
      expect(yield* leadership.isLeader).toBe(true)
      yield* TestClock.adjust("1 seconds")
      expect(yield* leadership.isLeader).toBe(false)
    }),
  )

  it.scoped("resigning gives the row up and stops leading at once", () =>
    Effect.gen(function* () {
      const { state, store } = fakeLeaderRow()
      const leadership = Leadership.make(store, "a", interval)
      yield* Effect.forkScoped(leadership.run)
      yield* TestClock.adjust("1 millis")
      yield* leadership.resign
      expect(yield* leadership.isLeader).toBe(false)
      expect(state.resigned).toEqual(["a"])
    }),
  )
})
