/**
 * The completer writes attempt outcomes in batches. A store stands in for the database here:
 * it applies an outcome only while the job is held under the outcome's lease, as the finish
 * statement does, and records each statement, so the tests see what a job's row and its
 * caller would see.
 */
import { SqlError } from "@effect/sql/SqlError"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Fiber } from "effect"
import * as Completer from "../../src/internal/queue/completer.js"
import type { Outcome, SerializedOutcome, Store } from "../../src/internal/store/store.js"
import type { JobId } from "../../src/JobRecord.js"

interface Row {
  lease: string
  state: string
}

const fakeStore = (rows: Map<number, Row>, refuse: (id: number) => boolean = () => false) => {
  const statements: Array<ReadonlyArray<number>> = []
  const store = {
    serialize: (outcome: Outcome) =>
      JSON.stringify({ id: outcome.id, lease: outcome.lease, kind: outcome.kind }),
    finishSerialized: (batch: ReadonlyArray<SerializedOutcome>) =>
      Effect.suspend(() => {
        const outcomes = batch.map(
          (json) => JSON.parse(json as string) as { id: number; lease: string; kind: string },
        )
        statements.push(outcomes.map((o) => o.id))
        if (outcomes.some((o) => refuse(o.id) && o.kind !== "discarded")) {
          return Effect.fail(
            new SqlError({ cause: { code: "22P05", message: "unsupported Unicode escape sequence" } }),
          )
        }
        const applied = new Set<number>()
        for (const o of outcomes) {
          const row = rows.get(o.id)
          if (row === undefined || row.lease !== o.lease) continue
          row.state = o.kind
          applied.add(o.id)
        }
        return Effect.succeed(applied as ReadonlySet<number>)
      }),
  } as unknown as Store
  return { store, statements }
}

const completed = (id: number, lease: string): Outcome =>
  ({ kind: "completed", id: id as JobId, lease, result: null }) as Outcome

const held = (...ids: Array<number>) =>
  new Map(ids.map((id) => [id, { lease: `lease-${id}`, state: "executing" }]))

describe("completer", () => {
  it.scoped("writes what finished meanwhile in one statement, at most maxBatch outcomes each", () =>
    Effect.gen(function* () {
      const rows = held(1, 2, 3, 4, 5)
      const { store, statements } = fakeStore(rows)
      const completer = yield* Completer.make(store, 2)
      const heard: Array<[number, string | undefined]> = []
      for (const id of rows.keys()) {
        yield* completer.submit(completed(id, `lease-${id}`), 1, (written) => heard.push([id, written?.kind]))
      }
      yield* Effect.forkScoped(completer.run)
      yield* completer.barrier
      expect(statements).toEqual([[1, 2], [3, 4], [5]])
      expect([...rows.values()].map((r) => r.state)).toEqual(Array(5).fill("completed"))
      expect(heard).toEqual([1, 2, 3, 4, 5].map((id) => [id, "completed"]))
    }),
  )

  it.scoped("writes a lone completion at once when nothing else is waiting", () =>
    Effect.gen(function* () {
      const rows = held(1)
      const { store, statements } = fakeStore(rows)
      const completer = yield* Completer.make(store, 100)
      yield* Effect.forkScoped(completer.run)
      yield* completer.submit(completed(1, "lease-1"), 1, () => {})
      yield* completer.barrier
      expect(statements).toEqual([[1]])
      expect(rows.get(1)!.state).toBe("completed")
    }),
  )

  it.scoped("leaves a job alone whose lease changed, and tells the attempt nothing was written", () =>
    Effect.gen(function* () {
      const rows = held(1, 2)
      // Rescued and claimed again by another node meanwhile.
      rows.get(2)!.lease = "someone else's"
      const { store } = fakeStore(rows)
      const completer = yield* Completer.make(store, 100)
      const heard = new Map<number, string | undefined>()
      yield* completer.submit(completed(1, "lease-1"), 1, (w) => heard.set(1, w?.kind))
      yield* completer.submit(completed(2, "lease-2"), 1, (w) => heard.set(2, w?.kind))
      yield* Effect.forkScoped(completer.run)
      yield* completer.barrier
      expect(rows.get(1)!.state).toBe("completed")
      expect(rows.get(2)!.state).toBe("executing")
      expect([...heard]).toEqual([
        [1, "completed"],
        [2, undefined],
      ])
    }),
  )

  it.scoped("a refused outcome is split from its batch and discarded; the others are written", () =>
    Effect.gen(function* () {
      const rows = held(1, 2, 3, 4)
      const { store } = fakeStore(rows, (id) => id === 3)
      const completer = yield* Completer.make(store, 100)
      const heard = new Map<number, string | undefined>()
      for (const id of rows.keys()) {
        yield* completer.submit(completed(id, `lease-${id}`), 1, (w) => heard.set(id, w?.kind))
      }
      yield* Effect.forkScoped(completer.run)
      yield* completer.barrier
      expect([...rows].map(([id, r]) => [id, r.state])).toEqual([
        [1, "completed"],
        [2, "completed"],
        [3, "discarded"],
        [4, "completed"],
      ])
      expect(heard.get(1)).toBe("completed")
      // The attempt hears what was stored, not what it offered.
      expect(heard.get(3)).toBe("discarded")
    }),
  )

  it.scoped("writes what is left at shutdown, after the writer has stopped", () =>
    Effect.gen(function* () {
      const rows = held(1, 2, 3)
      const { store, statements } = fakeStore(rows)
      const completer = yield* Completer.make(store, 2)
      const writer = yield* Effect.forkScoped(completer.run)
      yield* Fiber.interrupt(writer)
      for (const id of rows.keys()) yield* completer.submit(completed(id, `lease-${id}`), 1, () => {})
      expect(statements).toEqual([])
      yield* completer.flushRemaining
      expect(statements).toEqual([[1, 2], [3]])
      expect([...rows.values()].map((r) => r.state)).toEqual(["completed", "completed", "completed"])
    }),
  )
})
