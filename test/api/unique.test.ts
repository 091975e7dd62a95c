/**
 * Unique jobs: one job per key, settled by a unique index so racing inserters agree.
 */
import { describe, expect, it, layer } from "@effect/vitest"
import { Effect, Schema } from "effect"
import * as Job from "../../src/Job.js"
import * as Unique from "../../src/Unique.js"
import { engines } from "../support/engines.js"
import { awaitState, startJobs } from "../support/jobs.js"

const Sync = Job.make("sync", {
  args: Schema.Struct({ account: Schema.String, full: Schema.Boolean }),
  unique: { by: ["account"] },
})
const sync = Sync.handler(() => Effect.void)
const Mail = Job.make("mail", { args: Schema.Struct({ to: Schema.String }) })
const mail = Mail.handler(() => Effect.void)

describe("Unique.key", () => {
  it("depends on the chosen fields, the type, the queue and the period", () => {
    const at = Date.UTC(2026, 0, 1, 10, 30)
    const base = Unique.key({ by: ["a"] }, "t", "q", { a: 1, b: 2 }, at)
    expect(Unique.key({ by: ["a"] }, "t", "q", { b: 3, a: 1 }, at)).toBe(base)
    expect(Unique.key({ by: ["a"] }, "t", "q", { a: 2, b: 2 }, at)).not.toBe(base)
    expect(Unique.key({ by: ["a"] }, "other", "q", { a: 1 }, at)).not.toBe(base)
    expect(Unique.key({ by: ["a"] }, "t", "other", { a: 1 }, at)).not.toBe(base)
    expect(Unique.key({}, "t", "q", { a: 1, b: 2 }, at)).not.toBe(
      Unique.key({}, "t", "q", { a: 1, b: 3 }, at),
    )
    const hourly = { period: "1 hour" as const }
    expect(Unique.key(hourly, "t", "q", {}, at)).toBe(Unique.key(hourly, "t", "q", {}, at + 20 * 60_000))
    expect(Unique.key(hourly, "t", "q", {}, at)).not.toBe(Unique.key(hourly, "t", "q", {}, at + 40 * 60_000))
  })
})

for (const engine of engines) {
  describe(`unique jobs on ${engine.name}`, () => {
    layer(engine.layer, { timeout: 60_000, excludeTestServices: true })((it) => {
      it.scoped("a second insert with the same key returns the existing job and says so", () =>
        Effect.gen(function* () {
          const jobs = yield* startJobs({
            handlers: [sync],
            queues: { default: { concurrency: 1, paused: true } },
          })
          const first = yield* jobs.insert(Sync, { account: "a", full: false })
          const again = yield* jobs.insert(Sync, { account: "a", full: true })
          const other = yield* jobs.insert(Sync, { account: "b", full: false })
          expect([first.conflict, again.conflict, other.conflict]).toEqual([false, true, false])
          expect(again.id).toBe(first.id)
          expect(again.args).toEqual({ account: "a", full: false })
          expect(other.id).not.toBe(first.id)
          expect(yield* jobs.list()).toHaveLength(2)
        }),
      )

      it.scoped("fifty concurrent inserters of one key make exactly one job", () =>
        Effect.gen(function* () {
          const jobs = yield* startJobs({ handlers: [sync], queues: {} })
          const results = yield* Effect.all(
            Array.from({ length: 50 }, () => jobs.insert(Sync, { account: "race", full: false })),
            { concurrency: "unbounded" },
          )
          expect(new Set(results.map((r) => r.id)).size).toBe(1)
          expect(results.filter((r) => !r.conflict)).toHaveLength(1)
          expect(yield* jobs.list()).toHaveLength(1)
        }),
      )

      it.scoped("the states option decides which existing jobs block a new one", () =>
        Effect.gen(function* () {
          const jobs = yield* startJobs({ handlers: [mail] })
          const pendingOnly = { unique: { states: Unique.requiredStates } }
          const first = yield* jobs.insert(Mail, { to: "x" }, pendingOnly)
          yield* awaitState(jobs, first.id, "completed")
          const second = yield* jobs.insert(Mail, { to: "x" }, pendingOnly)
          expect(second.conflict).toBe(false)
          // With the default states a completed job still blocks its key.
          yield* awaitState(jobs, second.id, "completed")
          const third = yield* jobs.insert(Mail, { to: "y" }, { unique: {} })
          yield* awaitState(jobs, third.id, "completed")
          const fourth = yield* jobs.insert(Mail, { to: "y" }, { unique: {} })
          expect(fourth).toMatchObject({ conflict: true, id: third.id, state: "completed" })
          // Retrying a finished unique job whose key another job now holds is a typed conflict.
          const cancelled = yield* jobs.insert(Mail, { to: "z" }, { unique: {}, scheduleIn: "1 hour" })
          yield* jobs.cancel(cancelled.id)
          yield* jobs.insert(Mail, { to: "z" }, { unique: {}, scheduleIn: "1 hour" })
          const conflict = yield* Effect.flip(jobs.retry(cancelled.id))
          expect(conflict._tag).toBe("JobStateConflict")
        }),
      )

      it.scoped("insertMany keeps one job per key, the batch's own duplicates included", () =>
        Effect.gen(function* () {
          const jobs = yield* startJobs({ handlers: [sync], queues: {} })
          const existing = yield* jobs.insert(Sync, { account: "old", full: false })
          const results = yield* jobs.insertMany(Sync, [
            { account: "new", full: false },
            { account: "old", full: false },
            { account: "new", full: true },
            { account: "other", full: false },
          ])
          expect(results.map((r) => r.conflict)).toEqual([false, true, true, false])
          expect(results[1]!.id).toBe(existing.id)
          expect(results[2]!.id).toBe(results[0]!.id)
          expect(yield* jobs.list()).toHaveLength(3)
          const bad = yield* Effect.flip(
            jobs.insert(Sync, { account: "z", full: false }, { unique: { states: ["nope" as any] } }),
          )
          expect(bad._tag).toBe("InvalidJobOptions")
          // Leaving out a state a job passes through by itself would break the key's index.
          const partial = yield* Effect.flip(
            jobs.insert(Sync, { account: "z", full: false }, { unique: { states: ["available"] } }),
          )
          expect(partial.message).toContain("it lacks scheduled, executing, retryable")
        }),
      )
    })
  })
}
