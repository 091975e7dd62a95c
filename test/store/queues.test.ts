/**
 * Conformance of the queues table: each queue's cluster-wide pause, scale and retention; and
 * the reads the cluster's queue listing, its orphans, pruning and deletion are made of.
 */
import { describe, expect, layer } from "@effect/vitest"
import { Effect } from "effect"
import { engines } from "../support/engines.js"
import { withStore } from "./support.js"

/** Jobs written as rows: `[queue, type, state, finished at (for finished states)]`. */
const addJobs = (
  sql: { unsafe: (text: string, values: ReadonlyArray<unknown>) => Effect.Effect<unknown, unknown> },
  schema: string,
  rows: ReadonlyArray<readonly [string, string, string, string?]>,
) =>
  Effect.forEach(
    rows,
    ([queue, type, state, at]) =>
      sql.unsafe(
        `INSERT INTO ${schema}.jobs (queue, type, state, attempted_by, completed_at, cancelled_at, discarded_at)
         VALUES ($1, $2, $3, CASE WHEN $3 = 'executing' THEN 'node-a' END,
           CASE WHEN $3 = 'completed' THEN $4::timestamptz END,
           CASE WHEN $3 = 'cancelled' THEN $4::timestamptz END,
           CASE WHEN $3 = 'discarded' THEN $4::timestamptz END)`,
        [queue, type, state, at ?? null],
      ),
    { discard: true },
  )

const node = (id: string, queues: ReadonlyArray<string>, handlers: ReadonlyArray<string>) => ({
  id,
  host: "h",
  pid: 1,
  queues,
  startedAt: new Date(),
  queueConfigs: Object.fromEntries(
    queues.map((q) => [
      q,
      { concurrency: 3, paused: false, globalLimit: 5, rateLimit: null, deadLetter: null },
    ]),
  ),
  handlers,
})

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

      it.scoped("a pause answers whether the queue was stored as paused before", () =>
        Effect.gen(function* () {
          const { store } = yield* withStore
          expect(yield* store.setPaused("q", true)).toBe(false)
          expect(yield* store.setPaused("q", true)).toBe(true)
          expect(yield* store.setPaused("q", false)).toBe(true)
          expect(yield* store.setPaused("q", false)).toBe(false)
        }),
      )

      it.scoped("counts jobs per queue, state and executing node; finds available and unhandled work", () =>
        Effect.gen(function* () {
          const { store, sql, schema } = yield* withStore
          yield* addJobs(sql, schema, [
            ["a", "mail", "available"],
            ["a", "mail", "available"],
            ["a", "sms", "scheduled"],
            ["a", "mail", "executing"],
            ["b", "report", "completed", "2026-01-01T00:00:00Z"],
            ["b", "report", "retryable"],
          ])
          const counts = yield* store.countsByQueue
          expect(
            [...counts].sort((x, y) => `${x.queue}${x.state}`.localeCompare(`${y.queue}${y.state}`)),
          ).toEqual([
            { queue: "a", state: "available", count: 2, estimated: false },
            { queue: "a", state: "executing", count: 1, estimated: false },
            { queue: "a", state: "scheduled", count: 1, estimated: false },
            { queue: "b", state: "completed", count: 1, estimated: false },
            { queue: "b", state: "retryable", count: 1, estimated: false },
          ])
          expect(yield* store.executingByNode).toEqual([{ queue: "a", node: "node-a", count: 1 }])
          expect(yield* store.availableByQueue).toEqual([{ queue: "a", count: 2 }])
          // Waiting is scheduled, available or retryable; executing and finished jobs are not.
          expect(yield* store.waitingUnhandled(["mail"])).toEqual([
            { type: "report", queue: "b", count: 1 },
            { type: "sms", queue: "a", count: 1 },
          ])
          expect(yield* store.waitingUnhandled([])).toHaveLength(3)
          expect(yield* store.queueHasJobs("b")).toBe(true)
          expect(yield* store.queueHasJobs("c")).toBe(false)
        }),
      )

      it.scoped("a queue is known by its stored row or a live node running it", () =>
        Effect.gen(function* () {
          const { store } = yield* withStore
          expect(yield* store.queueKnown("q", 30_000)).toBe(false)
          yield* store.heartbeat(node("n1", ["q"], ["mail"]))
          expect(yield* store.queueKnown("q", 30_000)).toBe(true)
          expect(yield* store.queueKnown("other", 30_000)).toBe(false)
          yield* store.setConcurrency("other", 2)
          expect(yield* store.queueKnown("other", 30_000)).toBe(true)
          // The node's report reads back as written.
          const [row] = yield* store.nodes(30_000)
          expect(row!.queueConfigs).toEqual({
            q: { concurrency: 3, paused: false, globalLimit: 5, rateLimit: null, deadLetter: null },
          })
          expect(row!.handlers).toEqual(["mail"])
        }),
      )

      it.scoped("stores a queue's own retention, and removes it", () =>
        Effect.gen(function* () {
          const { store } = yield* withStore
          yield* store.setPaused("p", true)
          yield* store.setPruning("q", { completed: 1000, discarded: 0 })
          expect(yield* store.storedQueues).toEqual([
            { name: "p", paused: true, concurrency: null, pruning: null },
            { name: "q", paused: false, concurrency: null, pruning: { completed: 1000, discarded: 0 } },
          ])
          // A retention is no pause or resume.
          expect((yield* store.queueState("q")).pausedOrResumedAt).toBe(null)
          yield* store.setPruning("q", null)
          expect((yield* store.storedQueues)[1]!.pruning).toBe(null)
        }),
      )

      it.scoped("prunes one queue, or every queue but some", () =>
        Effect.gen(function* () {
          const { store, sql, schema, rows } = yield* withStore
          yield* addJobs(sql, schema, [
            ["a", "t", "completed", "2026-01-01T00:00:00Z"],
            ["a", "t", "completed", "2026-01-01T00:00:00Z"],
            ["a", "t", "completed", "2026-03-01T00:00:00Z"],
            ["b", "t", "completed", "2026-01-01T00:00:00Z"],
            ["c", "t", "discarded", "2026-01-01T00:00:00Z"],
            ["c", "t", "completed", "2026-01-01T00:00:00Z"],
          ])
          const before = new Date("2026-02-01T00:00:00Z")
          expect(yield* store.pruneQueues("completed", before, 1, "a", [])).toBe(1)
          expect(yield* store.pruneQueues("completed", before, 10, "a", [])).toBe(1)
          expect(yield* store.pruneQueues("completed", before, 10, null, ["b"])).toBe(1)
          const left = yield* rows("jobs")
          expect(left.map((r: any) => `${r.queue}:${r.state}`).sort()).toEqual([
            "a:completed",
            "b:completed",
            "c:discarded",
          ])
        }),
      )

      it.scoped("deletes a queue's stored state and, in batches, its jobs", () =>
        Effect.gen(function* () {
          const { store, sql, schema, rows } = yield* withStore
          yield* store.setPaused("a", true)
          yield* addJobs(sql, schema, [
            ["a", "t", "available"],
            ["a", "t", "completed", "2026-01-01T00:00:00Z"],
            ["a", "t", "executing"],
            ["b", "t", "available"],
          ])
          expect(yield* store.deleteQueue("a")).toBe(true)
          expect(yield* store.deleteQueue("a")).toBe(false)
          expect(yield* rows("queues")).toEqual([])
          expect(yield* store.deleteQueueJobs("a", 2)).toBe(2)
          expect(yield* store.deleteQueueJobs("a", 2)).toBe(1)
          expect(yield* store.deleteQueueJobs("a", 2)).toBe(0)
          expect((yield* rows("jobs")).map((r: any) => r.queue)).toEqual(["b"])
        }),
      )
    })
  })
}
