import { describe, expect, it } from "@effect/vitest"
import { Effect, Exit, Fiber, Ref, TestClock } from "effect"
import { supervise } from "../src/internal/supervisor.js"

const failingAfter = (runs: Ref.Ref<number>, failures: number) =>
  Effect.gen(function* () {
    const run = yield* Ref.updateAndGet(runs, (n) => n + 1)
    if (run <= failures) return yield* Effect.fail(`failure ${run}`)
    return "done"
  })

describe("supervise", () => {
  it.effect("restarts a failing child with growing delays until it succeeds", () =>
    Effect.gen(function* () {
      const runs = yield* Ref.make(0)
      const fiber = yield* Effect.fork(
        supervise("child", failingAfter(runs, 3), { baseDelay: "1 second", maxRestarts: 5 }),
      )
      yield* TestClock.adjust("1 second")
      expect(yield* Ref.get(runs)).toBe(2)
      // The second restart waits twice as long.
      yield* TestClock.adjust("1 second")
      expect(yield* Ref.get(runs)).toBe(2)
      yield* TestClock.adjust("1 second")
      expect(yield* Ref.get(runs)).toBe(3)
      yield* TestClock.adjust("4 seconds")
      expect(yield* Ref.get(runs)).toBe(4)
      expect(Exit.isSuccess(yield* Fiber.await(fiber))).toBe(true)
    }),
  )

  it.effect("escalates when a child fails more than maxRestarts times within the window", () =>
    Effect.gen(function* () {
      const runs = yield* Ref.make(0)
      const fiber = yield* Effect.fork(
        supervise("doomed", failingAfter(runs, 100), {
          baseDelay: "10 millis",
          maxRestarts: 3,
          window: "1 minute",
        }),
      )
      yield* TestClock.adjust("1 second")
      const exit = yield* Fiber.await(fiber)
      expect(yield* Ref.get(runs)).toBe(4)
      expect(exit).toMatchObject({ _tag: "Failure" })
      const error = yield* Effect.flip(exit)
      expect(error._tag).toBe("SupervisorEscalation")
      expect(error.child).toBe("doomed")
      expect(error.message).toContain("failure 4")
    }),
  )

  it.effect("forgets failures older than the window, so rare failures never escalate", () =>
    Effect.gen(function* () {
      const runs = yield* Ref.make(0)
      const fiber = yield* Effect.fork(
        supervise("occasional", Effect.zipRight(Effect.sleep("30 seconds"), failingAfter(runs, 10)), {
          baseDelay: "10 millis",
          maxRestarts: 2,
          window: "1 minute",
        }),
      )
      // Ten failures, thirty seconds apart: never more than two inside one minute.
      for (let n = 0; n < 11; n++) yield* TestClock.adjust("31 seconds")
      expect(yield* Ref.get(runs)).toBe(11)
      expect(Exit.isSuccess(yield* Fiber.await(fiber))).toBe(true)
    }),
  )

  it.effect("does not restart a child that was interrupted", () =>
    Effect.gen(function* () {
      const runs = yield* Ref.make(0)
      const fiber = yield* Effect.fork(
        supervise(
          "stopped",
          Effect.zipRight(
            Ref.update(runs, (n) => n + 1),
            Effect.never,
          ),
        ),
      )
      yield* TestClock.adjust("1 second")
      yield* Fiber.interrupt(fiber)
      yield* TestClock.adjust("1 minute")
      expect(yield* Ref.get(runs)).toBe(1)
    }),
  )
})
