import { describe, expect, it } from "@effect/vitest"
import { Duration, Effect, Random } from "effect"
import * as Backoff from "../src/Backoff.js"

const delays = (backoff: Backoff.Backoff, attempts: ReadonlyArray<number>) =>
  Effect.forEach(attempts, (attempt) => Effect.map(backoff.delay(attempt), Duration.toMillis))

describe("Backoff", () => {
  it.effect("exponential doubles from the base, caps at max, and spreads by the jitter", () =>
    Effect.gen(function* () {
      const noJitter = Backoff.exponential({ base: "1 second", max: "10 seconds", jitter: 0 })
      expect(yield* delays(noJitter, [1, 2, 3, 4, 5, 6])).toEqual([1000, 2000, 4000, 8000, 10000, 10000])
      const jittered = Backoff.exponential({ base: "1 second", jitter: 0.1 })
      const spread = yield* Effect.forEach(Array.from({ length: 200 }), () =>
        Effect.map(jittered.delay(3), Duration.toMillis),
      ).pipe(Effect.withRandom(Random.make("seed")))
      expect(Math.min(...spread)).toBeGreaterThanOrEqual(3600)
      expect(Math.max(...spread)).toBeLessThanOrEqual(4400)
      expect(new Set(spread).size).toBeGreaterThan(50)
    }),
  )

  it.effect("a list gives the n-th delay for the n-th attempt and repeats the last", () =>
    Effect.gen(function* () {
      const list = Backoff.from(["1 second", "5 seconds"])
      expect(yield* delays(list, [1, 2, 3, 10])).toEqual([1000, 5000, 5000, 5000])
    }),
  )

  it.effect("accepts a fixed delay, a number of millis, or a function of the attempt", () =>
    Effect.gen(function* () {
      expect(yield* delays(Backoff.from("3 seconds"), [1, 7])).toEqual([3000, 3000])
      expect(yield* delays(Backoff.from(250), [1, 2])).toEqual([250, 250])
      expect(
        yield* delays(
          Backoff.from((attempt) => attempt * 100),
          [1, 4],
        ),
      ).toEqual([100, 400])
    }),
  )
})
