/**
 * The slots that keep a queue's running fibers: what cancel, shutdown and status read.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Fiber } from "effect"
import { RunningFibers } from "../../src/internal/queue/runningFibers.js"
import type { JobId } from "../../src/JobRecord.js"

const id = (n: number) => n as JobId

describe("RunningFibers", () => {
  it.scoped("finds each job's fiber by id, and forgets a job once its slot is removed", () =>
    Effect.gen(function* () {
      const running = new RunningFibers()
      const a = yield* Effect.forkScoped(Effect.never)
      const b = yield* Effect.forkScoped(Effect.never)
      const slotA = running.add(id(1), a)
      running.add(id(2), b)
      expect(running.size).toBe(2)
      expect(running.get(id(1))).toBe(a)
      expect(running.get(id(2))).toBe(b)
      expect(running.get(id(3))).toBeUndefined()

      running.remove(slotA)
      expect(running.size).toBe(1)
      expect(running.get(id(1))).toBeUndefined()
      expect(running.all()).toEqual([b])
      expect(running.any()).toBe(b)
      // A slot removed twice (an observer called again) changes nothing.
      running.remove(slotA)
      expect(running.size).toBe(1)
    }),
  )

  it.scoped("reuses a freed slot instead of growing, and a job run again is found under its new fiber", () =>
    Effect.gen(function* () {
      const running = new RunningFibers()
      const first = yield* Effect.forkScoped(Effect.never)
      const slot = running.add(id(7), first)
      running.remove(slot)
      const again = yield* Effect.forkScoped(Effect.never)
      expect(running.add(id(7), again)).toBe(slot)
      expect(running.get(id(7))).toBe(again)
      expect(running.all()).toEqual([again])
    }),
  )

  it.scoped(
    "after half the slots are freed, the other half are still found by id and interrupted together",
    () =>
      Effect.gen(function* () {
        const running = new RunningFibers()
        const slots: Array<number> = []
        for (let n = 0; n < 50; n++) slots.push(running.add(id(n), yield* Effect.forkScoped(Effect.never)))
        for (const slot of slots.slice(0, 25)) running.remove(slot)
        expect(running.size).toBe(25)
        expect(running.any()).toBe(running.get(id(25)))
        yield* Fiber.interruptAll(running.all())
        for (let n = 25; n < 50; n++)
          expect(yield* Fiber.await(running.get(id(n))!)).toMatchObject({ _tag: "Failure" })
        expect(running.get(id(0))).toBeUndefined()
      }),
  )
})
