/**
 * How an attempt's outcome is stored: success, typed failure, crash, timeout, snooze, cancel,
 * discard, and what cannot be decoded or stored.
 */
import { SqlClient } from "@effect/sql/SqlClient"
import { describe, expect, layer } from "@effect/vitest"
import { Effect, Queue, Ref, Schema } from "effect"
import * as Job from "../../src/Job.js"
import type { JobId } from "../../src/JobRecord.js"
import { engines } from "../support/engines.js"
import { awaitState, startJobs } from "../support/jobs.js"
import { Echo, echo, Flaky, flaky } from "./fixtures.js"

for (const engine of engines) {
  describe(`runtime on ${engine.name}`, () => {
    layer(engine.layer, { timeout: 60_000, excludeTestServices: true })((it) => {
      it.scoped("runs an inserted job and stores its encoded result", () =>
        Effect.gen(function* () {
          const jobs = yield* startJobs({ handlers: [echo] })
          const job = yield* jobs.insert(Echo, { text: "hi" })
          expect(job.state).toBe("available")
          const done = yield* awaitState(jobs, job.id, "completed")
          expect(done.result).toEqual({ echoed: "hi" })
          expect(done.attempt).toBe(1)
          expect(done.attemptedBy).toBe(jobs.node)
          expect(done.completedAt).toBeInstanceOf(Date)
        }),
      )

      it.scoped("retries a typed failure with the definition's backoff, recording each error", () =>
        Effect.gen(function* () {
          const jobs = yield* startJobs({ handlers: [flaky] })
          const job = yield* jobs.insert(Flaky, { failUntil: 3 })
          const done = yield* awaitState(jobs, job.id, "completed")
          expect(done.attempt).toBe(3)
          expect(done.errors.map((e) => [e.attempt, e.tag, e.message])).toEqual([
            [1, "Boom", "attempt 1 failed"],
            [2, "Boom", "attempt 2 failed"],
          ])
          expect(done.errors[0]!.cause).toContain("Boom")
        }),
      )

      it.scoped("discards a job that runs out of attempts", () =>
        Effect.gen(function* () {
          const jobs = yield* startJobs({ handlers: [flaky] })
          const job = yield* jobs.insert(Flaky, { failUntil: 99 })
          const done = yield* awaitState(jobs, job.id, "discarded")
          expect(done.attempt).toBe(3)
          expect(done.errors).toHaveLength(3)
          expect(done.discardedAt).toBeInstanceOf(Date)
        }),
      )

      it.scoped("records a defect or a thrown exception as a crash and retries it", () =>
        Effect.gen(function* () {
          const Crashy = Job.make("crashy", { args: Schema.Struct({}), maxAttempts: 2, backoff: "10 millis" })
          const crashy = Crashy.handler(({ job }) =>
            job.attempt === 1
              ? Effect.sync(() => {
                  throw new Error("kaput")
                })
              : Effect.void,
          )
          const jobs = yield* startJobs({ handlers: [crashy] })
          const job = yield* jobs.insert(Crashy, {})
          const done = yield* awaitState(jobs, job.id, "completed")
          expect(done.errors).toHaveLength(1)
          expect(done.errors[0]!.tag).toBe("Defect")
          expect(done.errors[0]!.message).toBe("kaput")
        }),
      )

      it.scoped("interrupts a handler that runs over its timeout, and retries it", () =>
        Effect.gen(function* () {
          const interrupted = yield* Ref.make(0)
          const Slow = Job.make("slow", {
            args: Schema.Struct({}),
            timeout: "100 millis",
            maxAttempts: 2,
            backoff: 0,
          })
          const slow = Slow.handler(({ job }) =>
            job.attempt === 1
              ? Effect.never.pipe(Effect.onInterrupt(() => Ref.update(interrupted, (n) => n + 1)))
              : Effect.void,
          )
          const jobs = yield* startJobs({ handlers: [slow] })
          const job = yield* jobs.insert(Slow, {})
          const done = yield* awaitState(jobs, job.id, "completed")
          expect(yield* Ref.get(interrupted)).toBe(1)
          expect(done.errors.map((e) => e.tag)).toEqual(["JobTimeout"])
        }),
      )

      it.scoped("snoozes without using an attempt, and cancels or discards on request", () =>
        Effect.gen(function* () {
          const Control = Job.make("control", {
            args: Schema.Struct({ action: Schema.Literal("snooze", "cancel", "discard") }),
          })
          const control = Control.handler(
            ({ args, job }): Effect.Effect<void, Job.JobSnooze | Job.JobCancel | Job.JobDiscard> =>
              args.action === "snooze"
                ? // Snooze the first time only: a snoozed job comes back with a later scheduled_at.
                  job.scheduledAt.getTime() === job.insertedAt.getTime()
                  ? Job.snooze("100 millis")
                  : Effect.void
                : args.action === "cancel"
                  ? Job.cancel("not wanted")
                  : Job.discard("hopeless"),
          )
          const jobs = yield* startJobs({ handlers: [control] })
          const snoozed = yield* jobs.insert(Control, { action: "snooze" })
          const cancelled = yield* jobs.insert(Control, { action: "cancel" })
          const discarded = yield* jobs.insert(Control, { action: "discard" })
          const ranTwice = yield* awaitState(jobs, snoozed.id, "completed")
          expect(ranTwice.attempt).toBe(1)
          expect(ranTwice.scheduledAt.getTime()).toBeGreaterThan(ranTwice.insertedAt.getTime())
          const c = yield* awaitState(jobs, cancelled.id, "cancelled")
          expect(c.errors[0]!.message).toBe("cancelled: not wanted")
          const d = yield* awaitState(jobs, discarded.id, "discarded")
          expect(d.attempt).toBe(1)
          expect(d.errors[0]!.message).toBe("discarded: hopeless")
        }),
      )

      it.scoped("hands a running job the timestamps stored for it, to the millisecond", () =>
        Effect.gen(function* () {
          const Stamp = Job.make("stamp", { args: Schema.Struct({}) })
          const seen = yield* Ref.make<ReadonlyArray<readonly [number, number, number]>>([])
          const stamp = Stamp.handler(({ job }) =>
            Ref.update(seen, (all) => [
              ...all,
              [job.id, job.scheduledAt.getTime(), job.insertedAt.getTime()] as const,
            ]),
          )
          const jobs = yield* startJobs({ handlers: [stamp] })
          const sql = yield* SqlClient
          // Jobs inserted by plain SQL carry microseconds, which a millisecond never rounds up
          // from; the claim reads its timestamps as epoch milliseconds, before 1970 included.
          const rows = yield* sql.unsafe<{ id: string }>(
            `INSERT INTO ${jobs.schema}.jobs (queue, type, scheduled_at, inserted_at) VALUES
               ('default', 'stamp', '2026-03-04T05:06:07.999999Z', '2026-03-04T05:06:07.123456Z'),
               ('default', 'stamp', '1969-12-31T23:59:59.999500Z', now())
             RETURNING id`,
          )
          const ids = rows.map((row) => Number(row.id) as JobId)
          const stored = yield* Effect.forEach(ids, (id) => awaitState(jobs, id, "completed"))
          const byId = [...(yield* Ref.get(seen))].sort((a, b) => a[0] - b[0])
          expect(byId).toEqual(
            stored.map((job) => [job.id, job.scheduledAt.getTime(), job.insertedAt.getTime()]),
          )
          expect(byId.map(([, scheduled]) => new Date(scheduled).toISOString())).toEqual([
            "2026-03-04T05:06:07.999Z",
            "1969-12-31T23:59:59.999Z",
          ])
          expect(new Date(byId[0]![2]).toISOString()).toBe("2026-03-04T05:06:07.123Z")
        }),
      )

      it.scoped("retries a job whose type has no handler on this node, without crashing", () =>
        Effect.gen(function* () {
          const Orphan = Job.make("orphan", { args: Schema.Struct({}), backoff: "1 hour" })
          const jobs = yield* startJobs({ handlers: [echo] })
          const job = yield* jobs.insert(Orphan, {})
          const failed = yield* awaitState(jobs, job.id, "retryable")
          expect(failed.errors[0]!.tag).toBe("UnknownJobType")
          expect(failed.errors[0]!.message).toContain('"orphan"')
          const ok = yield* jobs.insert(Echo, { text: "still running" })
          yield* awaitState(jobs, ok.id, "completed")
        }),
      )

      it.scoped("discards a job whose stored args no longer decode, recording the parse error", () =>
        Effect.gen(function* () {
          const V1 = Job.make("versioned", { args: Schema.Struct({ name: Schema.String }) })
          const V2 = Job.make("versioned", { args: Schema.Struct({ fullName: Schema.String }) })
          const jobs = yield* startJobs({ handlers: [V2.handler(() => Effect.void)] })
          const job = yield* jobs.insert(V1, { name: "old shape" })
          const done = yield* awaitState(jobs, job.id, "discarded")
          expect(done.errors[0]!.tag).toBe("ArgsDecodeError")
          expect(done.errors[0]!.message).toContain("fullName")
        }),
      )

      it.scoped("a result that cannot be stored fails its own attempt and holds up no other", () =>
        Effect.gen(function* () {
          const Odd = Job.make("odd", {
            args: Schema.Struct({ kind: Schema.Literal("nul", "bigint", "fine") }),
            result: Schema.Unknown,
            backoff: "1 hour",
          })
          const odd = Odd.handler(({ args }) =>
            Effect.succeed(args.kind === "nul" ? "a\u0000b" : args.kind === "bigint" ? 1n : "ok"),
          )
          const jobs = yield* startJobs({ handlers: [odd] })
          const events = yield* jobs.subscribe
          const nul = yield* jobs.insert(Odd, { kind: "nul" })
          const big = yield* jobs.insert(Odd, { kind: "bigint" })
          const fine = yield* jobs.insert(Odd, { kind: "fine" })
          // Text PostgreSQL refuses is made storable; a value JSON cannot carry is a failure.
          expect((yield* awaitState(jobs, nul.id, "completed")).result).toBe("a\uFFFDb")
          const failed = yield* awaitState(jobs, big.id, "retryable")
          expect(failed.errors.map((e) => [e.attempt, e.tag])).toEqual([[1, "UnstorableOutcome"]])
          expect((yield* awaitState(jobs, fine.id, "completed")).result).toBe("ok")
          // Subscribers hear what was stored, not what the handler returned.
          const seen = Array.from(yield* Queue.takeAll(events)).filter(
            (e) => e._tag !== "Inserted" && e._tag !== "Started",
          )
          expect(seen.filter((e) => e.id === big.id).map((e) => e._tag)).toEqual(["Failed"])
          // The writer is still healthy.
          const later = yield* jobs.insert(Odd, { kind: "fine" })
          yield* awaitState(jobs, later.id, "completed")
        }),
      )
    })
  })
}
