/**
 * The runtime's behaviour as a user sees it, on every engine.
 */

import { SqlClient } from "@effect/sql/SqlClient"
import { describe, expect, layer } from "@effect/vitest"
import {
  Deferred,
  Duration,
  Effect,
  Either,
  Exit,
  Fiber,
  Layer,
  Metric,
  Queue,
  Ref,
  Schema,
  Stream,
  Tracer,
} from "effect"
import { attemptsTotal, queueWaitMillis, runMillis } from "../src/internal/observer.js"
import * as Store from "../src/internal/store/store.js"
import * as Job from "../src/Job.js"
import type { JobId } from "../src/JobRecord.js"
import type * as Jobs from "../src/Jobs.js"
import * as Listener from "../src/Listener.js"
import { dropSchema, engines, freshSchema } from "./support/engines.js"
import { awaitState, eventually, interruptibleJob, startJobs } from "./support/jobs.js"

const Echo = Job.make("echo", {
  args: Schema.Struct({ text: Schema.String }),
  result: Schema.Struct({ echoed: Schema.String }),
  backoff: "50 millis",
})
const echo = Echo.handler(({ args }) => Effect.succeed({ echoed: args.text }))

const Flaky = Job.make("flaky", {
  args: Schema.Struct({ failUntil: Schema.Number }),
  maxAttempts: 3,
  backoff: ["50 millis", "100 millis"],
})
class Boom extends Schema.TaggedError<Boom>()("Boom", { message: Schema.String }) {}
const flaky = Flaky.handler(({ args, job }) =>
  job.attempt < args.failUntil
    ? Effect.fail(new Boom({ message: `attempt ${job.attempt} failed` }))
    : Effect.void,
)

/** Runs no queue, and rescues within a fraction of a second. */
const quickRescue = {
  handlers: [echo],
  queues: {},
  heartbeatInterval: "100 millis",
  nodeTimeout: "300 millis",
} as const

/** A node that never heartbeats claims the queue's next job and vanishes; answers its store. */
const orphan = (schema: string, queue: string, node: string, lease: string) =>
  Effect.gen(function* () {
    const ghost = Store.make(yield* SqlClient, schema)
    yield* ghost.claim(queue, 1, node, lease, new Date())
    return ghost
  })

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

      it.scoped("runs a scheduled job once it is due, not before", () =>
        Effect.gen(function* () {
          const jobs = yield* startJobs({ handlers: [echo] })
          const job = yield* jobs.insert(Echo, { text: "later" }, { scheduleIn: "400 millis" })
          expect(job.state).toBe("scheduled")
          yield* Effect.sleep("150 millis")
          expect((yield* jobs.get(job.id)).state).toBe("scheduled")
          const done = yield* awaitState(jobs, job.id, "completed")
          expect(done.attemptedAt!.getTime()).toBeGreaterThanOrEqual(job.scheduledAt.getTime())
        }),
      )

      it.scoped("rejects bad insert options with a typed error and writes nothing", () =>
        Effect.gen(function* () {
          const jobs = yield* startJobs({ handlers: [echo], maxPayloadBytes: 100 })
          const attempts: Array<Effect.Effect<unknown, Jobs.InsertError>> = [
            jobs.insert(Echo, { text: "x" }, { priority: -1 }),
            jobs.insert(Echo, { text: "x" }, { priority: 1.5 }),
            jobs.insert(Echo, { text: "x" }, { queue: "bad queue!" }),
            jobs.insert(Echo, { text: "x" }, { maxAttempts: 0 }),
            jobs.insert(Echo, { text: "x" }, { scheduleAt: new Date("nonsense") }),
            jobs.insert(Echo, { text: "x".repeat(200) }),
            jobs.insertMany(Echo, [{ text: "fine" }, { text: "y".repeat(200) }]),
          ]
          const tags: Array<string> = []
          for (const attempt of attempts) {
            const result = yield* Effect.either(attempt)
            tags.push(Either.isLeft(result) ? result.left._tag : "Right")
          }
          expect(tags).toEqual([
            "InvalidJobOptions",
            "InvalidJobOptions",
            "InvalidJobOptions",
            "InvalidJobOptions",
            "InvalidJobOptions",
            "PayloadTooLarge",
            "PayloadTooLarge",
          ])
          expect(yield* jobs.list()).toHaveLength(0)
          // @ts-expect-error: args are stored as JSON, so the Schema must encode to JSON
          Job.make("dated", { args: Schema.Struct({ at: Schema.DateFromSelf }) })
          const infinite = yield* Effect.flip(
            jobs.insert(Echo, { text: "x" }, { scheduleIn: Duration.infinity }),
          )
          expect(infinite._tag).toBe("InvalidJobOptions")
          const smuggled = yield* Effect.flip(jobs.insert(Echo, { text: 1n as unknown as string }))
          expect(smuggled._tag).toBe("InvalidJobArgs")
          // @ts-expect-error: args must match the definition's Schema
          const wrong = yield* Effect.either(jobs.insert(Echo, { txt: "typo" }))
          expect(Either.isLeft(wrong) && wrong.left._tag).toBe("InvalidJobArgs")
        }),
      )

      it.scoped("inserts inside the app's transaction: committed with it, rolled back with it", () =>
        Effect.gen(function* () {
          const sql = yield* SqlClient
          const jobs = yield* startJobs({
            handlers: [echo],
            queues: { default: { concurrency: 1, paused: true } },
          })
          yield* sql.unsafe(`CREATE TABLE ${jobs.schema}.orders (id serial PRIMARY KEY, note text)`)
          yield* sql.withTransaction(
            Effect.zipRight(
              sql.unsafe(`INSERT INTO ${jobs.schema}.orders (note) VALUES ('kept')`),
              jobs.insert(Echo, { text: "committed" }),
            ),
          )
          const rolledBack = yield* sql
            .withTransaction(
              Effect.gen(function* () {
                yield* sql.unsafe(`INSERT INTO ${jobs.schema}.orders (note) VALUES ('lost')`)
                yield* jobs.insert(Echo, { text: "rolled back" })
                return yield* Effect.fail("abort")
              }),
            )
            .pipe(Effect.flip)
          expect(rolledBack).toBe("abort")
          const listed = yield* jobs.list()
          expect(listed.map((j) => (j.args as { text: string }).text)).toEqual(["committed"])
          const orders = yield* sql.unsafe<{ note: string }>(`SELECT note FROM ${jobs.schema}.orders`)
          expect(orders.map((o) => o.note)).toEqual(["kept"])
        }),
      )

      it.scoped("inserts thousands of jobs with one call and runs them all", () =>
        Effect.gen(function* () {
          const Noop = Job.make("noop", { args: Schema.Struct({ n: Schema.Number }) })
          const jobs = yield* startJobs({
            handlers: [Noop.handler(() => Effect.void)],
            queues: { default: 20 },
          })
          const inserted = yield* jobs.insertMany(
            Noop,
            Array.from({ length: 2000 }, (_, n) => ({ n })),
          )
          expect(inserted).toHaveLength(2000)
          yield* jobs.flush("default")
          const info = yield* jobs.queueInfo("default")
          expect(info.states.completed.count).toBe(2000)
          expect(info.states.available.count + info.states.executing.count).toBe(0)
        }),
      )

      it.scoped("runs higher-priority jobs first", () =>
        Effect.gen(function* () {
          const order: Array<number> = []
          const Ordered = Job.make("ordered", { args: Schema.Struct({ n: Schema.Number }) })
          const ordered = Ordered.handler(({ args }) => Effect.sync(() => order.push(args.n)))
          const jobs = yield* startJobs({
            handlers: [ordered],
            queues: { default: { concurrency: 1, paused: true } },
          })
          yield* jobs.insert(Ordered, { n: 3 }, { priority: 3 })
          yield* jobs.insert(Ordered, { n: 1 }, { priority: 1 })
          yield* jobs.insert(Ordered, { n: 0 }, { priority: 0 })
          yield* jobs.insert(Ordered, { n: 2 }, { priority: 1 })
          yield* jobs.resumeQueue("default")
          yield* jobs.flush("default")
          expect(order).toEqual([0, 1, 2, 3])
        }),
      )

      it.scoped(
        "claims jobs that become available before where its claims have reached, when told where",
        () =>
          Effect.gen(function* () {
            const ran: Array<string> = []
            const Tagged = Job.make("tagged", { args: Schema.Struct({ tag: Schema.String }) })
            const tagged = Tagged.handler(({ args }) => Effect.sync(() => ran.push(args.tag)))
            // Polling a minute apart, only the signals' positions can bring these jobs in soon.
            const jobs = yield* startJobs({
              handlers: [tagged],
              queues: { default: { concurrency: 1, pollInterval: "1 minute" } },
            })
            for (const tag of ["a", "b", "c"]) yield* jobs.insert(Tagged, { tag }, { priority: 5 })
            yield* jobs.flush("default")
            const lower = yield* jobs.insert(Tagged, { tag: "priority 9" }, { priority: 9 })
            yield* awaitState(jobs, lower.id, "completed", "5 seconds")
            // Before every job claimed so far in the claim order.
            const higher = yield* jobs.insert(Tagged, { tag: "priority 0" }, { priority: 0 })
            yield* awaitState(jobs, higher.id, "completed", "5 seconds")
            // Due before the jobs inserted after it, which run first: the stager's signal brings
            // the claims back to it.
            const staged = yield* jobs.insert(
              Tagged,
              { tag: "staged" },
              { priority: 5, scheduleIn: "300 millis" },
            )
            yield* Effect.sleep("400 millis")
            const later = yield* jobs.insert(Tagged, { tag: "later" }, { priority: 5 })
            yield* awaitState(jobs, later.id, "completed", "5 seconds")
            yield* awaitState(jobs, staged.id, "completed", "5 seconds")
            expect(ran.slice(0, 5)).toEqual(["a", "b", "c", "priority 9", "priority 0"])
          }),
      )

      it.scoped("claims a job made available without a signal within the poll interval", () =>
        Effect.gen(function* () {
          const sql = yield* SqlClient
          const jobs = yield* startJobs({ handlers: [echo] })
          for (const text of ["one", "two"]) yield* jobs.insert(Echo, { text })
          yield* jobs.flush("default")
          // A job put back by hand with an old due time, as a claim that rolled back leaves
          // one: no signal goes out, and it stands before every job claimed.
          const job = yield* jobs.insert(Echo, { text: "unsignalled" }, { scheduleIn: "1 hour" })
          yield* sql.unsafe(
            `UPDATE ${jobs.schema}.jobs SET state = 'available', scheduled_at = '2000-01-01' WHERE id = $1`,
            [job.id],
          )
          yield* awaitState(jobs, job.id, "completed", "5 seconds")
        }),
      )

      it.scoped("pauses, resumes and scales a queue, and reports it", () =>
        Effect.gen(function* () {
          const gate = yield* Deferred.make<void>()
          const Gated = Job.make("gated", { args: Schema.Struct({}) })
          const jobs = yield* startJobs({
            handlers: [Gated.handler(() => Deferred.await(gate))],
            queues: { default: 2 },
          })
          yield* jobs.pauseQueue("default")
          yield* jobs.insertMany(
            Gated,
            Array.from({ length: 5 }, () => ({})),
          )
          yield* Effect.sleep("300 millis")
          expect((yield* jobs.queueInfo("default")).states.available.count).toBe(5)
          yield* jobs.resumeQueue("default")
          const running = yield* eventually(
            Effect.flatMap(jobs.queueInfo("default"), (info) =>
              info.running === 2 ? Effect.succeed(info) : Effect.fail("not yet"),
            ),
          )
          expect(running.limit).toBe(2)
          expect(running.states.executing.count).toBe(2)
          yield* jobs.scaleQueue("default", 5)
          yield* eventually(
            Effect.flatMap(jobs.queueInfo("default"), (info) =>
              info.running === 5 ? Effect.void : Effect.fail("not yet"),
            ),
          )
          yield* Deferred.succeed(gate, undefined)
          yield* jobs.drain("default")
          expect((yield* jobs.queueInfo("default")).states.completed.count).toBe(5)
          expect(yield* jobs.queues).toEqual([{ name: "default", limit: 5, running: 0, paused: false }])
          // Asking twice answers twice.
          expect(yield* jobs.queues).toHaveLength(1)
          expect((yield* Effect.flip(jobs.pauseQueue("nope", { localOnly: true })))._tag).toBe(
            "QueueNotFound",
          )
          expect((yield* Effect.flip(jobs.scaleQueue("default", 0)))._tag).toBe("InvalidJobOptions")
        }),
      )

      it.scoped("starts and stops queues at runtime", () =>
        Effect.gen(function* () {
          const jobs = yield* startJobs({ handlers: [echo], queues: {} })
          const job = yield* jobs.insert(Echo, { text: "late queue" }, { queue: "mail" })
          yield* Effect.sleep("200 millis")
          expect((yield* jobs.get(job.id)).state).toBe("available")
          yield* jobs.startQueue("mail", 3)
          expect((yield* Effect.flip(jobs.startQueue("mail", 3)))._tag).toBe("QueueAlreadyRunning")
          yield* awaitState(jobs, job.id, "completed")
          yield* jobs.stopQueue("mail")
          expect(yield* jobs.queues).toEqual([])
          const after = yield* jobs.insert(Echo, { text: "nobody runs me" }, { queue: "mail" })
          yield* Effect.sleep("300 millis")
          expect((yield* jobs.get(after.id)).state).toBe("available")
        }),
      )

      it.scoped("cancels an executing job by interrupting its handler", () =>
        Effect.gen(function* () {
          const { definition: Long, handler: long, started, interrupted } = yield* interruptibleJob("long")
          const jobs = yield* startJobs({ handlers: [long] })
          const job = yield* jobs.insert(Long, {})
          yield* Deferred.await(started)
          const cancelled = yield* jobs.cancel(job.id)
          expect(cancelled.state).toBe("cancelled")
          yield* Deferred.await(interrupted)
          yield* jobs.drain("default")
          expect((yield* jobs.get(job.id)).state).toBe("cancelled")
          const conflict = yield* Effect.flip(jobs.cancel(job.id))
          expect(conflict._tag).toBe("JobStateConflict")
          expect((yield* Effect.flip(jobs.cancel(987654)))._tag).toBe("JobNotFound")
        }),
      )

      it.scoped("retries a discarded job by hand and deletes finished ones", () =>
        Effect.gen(function* () {
          const jobs = yield* startJobs({ handlers: [flaky] })
          const job = yield* jobs.insert(Flaky, { failUntil: 4 }, { maxAttempts: 1 })
          yield* awaitState(jobs, job.id, "discarded")
          const retried = yield* jobs.retry(job.id)
          expect(retried.state).toBe("available")
          expect(retried.maxAttempts).toBe(2)
          const again = yield* awaitState(jobs, job.id, "discarded")
          expect(again.attempt).toBe(2)
          yield* jobs.delete(job.id)
          expect((yield* Effect.flip(jobs.get(job.id)))._tag).toBe("JobNotFound")
        }),
      )

      it.scoped("lists jobs by queue, state and type, newest first, in pages", () =>
        Effect.gen(function* () {
          const jobs = yield* startJobs({ handlers: [echo], queues: {} })
          for (let n = 0; n < 5; n++) yield* jobs.insert(Echo, { text: `a${n}` }, { queue: "a" })
          yield* jobs.insert(Echo, { text: "b" }, { queue: "b", scheduleIn: "1 hour" })
          const page1 = yield* jobs.list({ queue: "a", limit: 2 })
          const page2 = yield* jobs.list({ queue: "a", limit: 2, offset: 2 })
          expect([...page1, ...page2].map((j) => (j.args as any).text)).toEqual(["a4", "a3", "a2", "a1"])
          expect((yield* jobs.list({ state: "scheduled" })).map((j) => j.queue)).toEqual(["b"])
          expect(yield* jobs.list({ type: "other" })).toEqual([])
          expect((yield* Effect.flip(jobs.list({ state: "bogus" as any })))._tag).toBe("InvalidJobOptions")
          expect((yield* Effect.flip(jobs.list({ limit: 0 })))._tag).toBe("InvalidJobOptions")
        }),
      )

      it.scoped("publishes lifecycle events in order", () =>
        Effect.gen(function* () {
          const jobs = yield* startJobs({ handlers: [flaky] })
          const collected = yield* jobs.events.pipe(
            Stream.filter((e) => e._tag !== "Inserted"),
            Stream.take(4),
            Stream.runCollect,
            Effect.fork,
          )
          yield* Effect.sleep("50 millis")
          yield* jobs.insert(Flaky, { failUntil: 2 })
          const events = yield* Fiber.join(collected)
          expect(Array.from(events, (e) => e._tag)).toEqual(["Started", "Failed", "Started", "Completed"])
        }),
      )

      it.scoped(
        "on shutdown lets a short job finish and puts a long one back without using its attempt",
        () =>
          Effect.gen(function* () {
            const sql = yield* SqlClient
            const schema = freshSchema()
            yield* Effect.addFinalizer(() => dropSchema(sql, schema))
            const started = yield* Ref.make(0)
            const Work = Job.make("work", { args: Schema.Struct({ millis: Schema.Number }) })
            const work = Work.handler(({ args }) =>
              Effect.zipRight(
                Ref.update(started, (n) => n + 1),
                Effect.sleep(args.millis),
              ),
            )
            const [short, long] = yield* Effect.scoped(
              Effect.gen(function* () {
                const jobs = yield* startJobs({ schema, handlers: [work], shutdownTimeout: "500 millis" })
                const short = yield* jobs.insert(Work, { millis: 200 })
                const long = yield* jobs.insert(Work, { millis: 60_000 })
                yield* eventually(
                  Effect.flatMap(Ref.get(started), (n) => (n === 2 ? Effect.void : Effect.fail("wait"))),
                )
                return [short.id, long.id] as const
              }),
            )
            const rows = yield* sql.unsafe<{ id: string; state: string; attempt: number }>(
              `SELECT id, state, attempt FROM ${schema}.jobs ORDER BY id`,
            )
            expect(rows.map((r) => [Number(r.id), r.state, Number(r.attempt)])).toEqual([
              [short, "completed", 1],
              [long, "available", 0],
            ])
          }),
      )

      it.scoped("traces every attempt and counts outcomes, queue wait and run time in metrics", () =>
        Effect.gen(function* () {
          const native = yield* Effect.tracer
          const spans: Array<Tracer.Span> = []
          const recording = Tracer.make({
            span: (...args) => {
              const span = native.span(...args)
              spans.push(span)
              return span
            },
            context: native.context,
          })
          yield* Effect.gen(function* () {
            const type = `metered_${engine.name}`
            const Metered = Job.make(type, { args: Schema.Struct({ fail: Schema.Boolean }), maxAttempts: 1 })
            const metered = Metered.handler(({ args }) => (args.fail ? Effect.fail("no") : Effect.void))
            const jobs = yield* startJobs({ handlers: [metered] })
            const ok = yield* jobs.insert(Metered, { fail: false })
            const bad = yield* jobs.insert(Metered, { fail: true })
            yield* Effect.flip(jobs.insert(Metered, { fail: false }, { priority: -1 }))
            yield* awaitState(jobs, ok.id, "completed")
            yield* awaitState(jobs, bad.id, "discarded")
            const count = (outcome: string) =>
              Metric.value(
                attemptsTotal.pipe(
                  Metric.tagged("queue", "default"),
                  Metric.tagged("type", type),
                  Metric.tagged("outcome", outcome),
                ),
              ).pipe(Effect.map((state) => state.count))
            expect(yield* count("completed")).toBe(1)
            expect(yield* count("discarded")).toBe(1)
            const runs = yield* Metric.value(
              runMillis.pipe(Metric.tagged("queue", "default"), Metric.tagged("type", type)),
            )
            expect(runs.count).toBe(2)
            expect((yield* Metric.value(queueWaitMillis)).count).toBeGreaterThanOrEqual(2)
          }).pipe(Effect.withTracer(recording))
          const performed = spans.filter((span) => span.name === "effect-jobs.perform")
          expect(performed).toHaveLength(2)
          expect(Object.fromEntries(performed[0]!.attributes)).toMatchObject({
            "job.queue": "default",
            "job.type": `metered_${engine.name}`,
            "job.attempt": 1,
          })
          const inserts = spans.filter((span) => span.name === "Jobs.insert")
          expect(inserts).toHaveLength(3)
          // The refused insert's span ends failed, with no stack trace: the frame one would
          // record is the runtime's own, never the app's.
          const refused = inserts.find(
            (span) => span.status._tag === "Ended" && span.status.exit._tag === "Failure",
          )
          expect(refused).toBeDefined()
          expect(refused!.attributes.has("code.stacktrace")).toBe(false)
        }),
      )

      it.scoped("prunes finished jobs once their retention has passed", () =>
        Effect.gen(function* () {
          const jobs = yield* startJobs({
            handlers: [echo],
            prune: { completed: "200 millis", interval: "100 millis" },
          })
          const job = yield* jobs.insert(Echo, { text: "short-lived" })
          yield* awaitState(jobs, job.id, "completed")
          yield* eventually(
            Effect.flatMap(Effect.either(jobs.get(job.id)), (result) =>
              Either.isLeft(result) && result.left._tag === "JobNotFound"
                ? Effect.void
                : Effect.fail("still there"),
            ),
          )
        }),
      )

      it.scoped(
        "keeps no completed job when their retention is zero, and still reports each completion",
        () =>
          Effect.gen(function* () {
            const jobs = yield* startJobs({ handlers: [echo], prune: { completed: 0 } })
            const events = yield* jobs.subscribe
            const job = yield* jobs.insert(Echo, { text: "gone when done" })
            const seen: Array<string> = []
            while (!seen.includes("Completed")) seen.push((yield* Queue.take(events))._tag)
            // The inserting fiber publishes Inserted after its statement returns, so a local
            // dispatcher quick enough can publish Started first; only Started → Completed is ordered.
            expect([...seen].sort()).toEqual(["Completed", "Inserted", "Started"])
            expect(seen.indexOf("Started")).toBeLessThan(seen.indexOf("Completed"))
            yield* eventually(
              Effect.flatMap(Effect.either(jobs.get(job.id)), (result) =>
                Either.isLeft(result) && result.left._tag === "JobNotFound"
                  ? Effect.void
                  : Effect.fail("still there"),
              ),
            )
            expect((yield* jobs.queueInfo("default")).states.completed.count).toBe(0)
          }),
      )

      it.scoped("tells subscribers about cancels made through the API, and counts queues not run here", () =>
        Effect.gen(function* () {
          const jobs = yield* startJobs({ handlers: [echo], queues: {} })
          const events = yield* jobs.subscribe
          const job = yield* jobs.insert(Echo, { text: "never runs" }, { queue: "elsewhere" })
          yield* jobs.cancel(job.id)
          const seen = [yield* Queue.take(events), yield* Queue.take(events)]
          expect(seen.map((e) => [e._tag, e.id])).toEqual([
            ["Inserted", job.id],
            ["Cancelled", job.id],
          ])
          const info = yield* jobs.queueInfo("elsewhere")
          expect(info).toMatchObject({ runningHere: false, running: 0, limit: 0 })
          expect(info.states.cancelled.count).toBe(1)
          expect((yield* Effect.flip(jobs.queueInfo("not a queue!")))._tag).toBe("QueueNotFound")
        }),
      )

      it.scoped("skips the attempt span under Effect's built-in tracer unless tracing is asked for", () =>
        Effect.gen(function* () {
          const seen: Array<string> = []
          const Spanned = Job.make("spanned", { args: Schema.Struct({}) })
          const spanned = Spanned.handler(() =>
            Effect.currentSpan.pipe(
              Effect.match({
                onFailure: () => seen.push("none"),
                onSuccess: (span) => seen.push(span.name),
              }),
            ),
          )
          const quiet = yield* startJobs({ handlers: [spanned] })
          yield* awaitState(quiet, (yield* quiet.insert(Spanned, {})).id, "completed")
          const traced = yield* startJobs({ handlers: [spanned], tracing: true })
          yield* awaitState(traced, (yield* traced.insert(Spanned, {})).id, "completed")
          expect(seen).toEqual(["none", "effect-jobs.perform"])
        }),
      )

      it.scoped("registers this node while it runs and forgets it when it stops", () =>
        Effect.gen(function* () {
          const sql = yield* SqlClient
          const schema = freshSchema()
          yield* Effect.addFinalizer(() => dropSchema(sql, schema))
          const node = yield* Effect.scoped(
            Effect.gen(function* () {
              const jobs = yield* startJobs({ schema, handlers: [echo], queues: { default: 1, mail: 2 } })
              const nodes = yield* jobs.nodes
              expect(nodes.map((n) => [n.id, [...n.queues].sort(), n.pid])).toEqual([
                [jobs.node, ["default", "mail"], process.pid],
              ])
              return jobs.node
            }),
          )
          const left = yield* sql.unsafe(`SELECT id FROM ${schema}.nodes WHERE id = $1`, [node])
          expect(left).toEqual([])
        }),
      )

      it.scoped("rescues a job left executing by a node that stopped heartbeating, and runs it again", () =>
        Effect.gen(function* () {
          const jobs = yield* startJobs(quickRescue)
          const job = yield* jobs.insert(Echo, { text: "orphan" }, { queue: "other" })
          const ghost = yield* orphan(
            jobs.schema,
            "other",
            "ghost-node",
            "00000000-0000-4000-8000-0000000000ee",
          )
          yield* jobs.startQueue("other", 1)
          const done = yield* awaitState(jobs, job.id, "completed")
          expect(done.attempt).toBe(2)
          expect(done.errors.map((e) => [e.attempt, e.tag])).toEqual([[1, "Rescued"]])
          expect(done.errors[0]!.message).toContain("ghost-node")
          // The vanished node's late write is rejected: its lease was cleared by the rescue.
          const late = yield* ghost.finish(
            [
              {
                kind: "completed",
                id: job.id,
                lease: "00000000-0000-4000-8000-0000000000ee",
                result: "late",
              },
            ],
            new Date(),
          )
          expect(late.size).toBe(0)
        }),
      )

      it.scoped("discards a job rescued maxRescues times: it probably kills its process", () =>
        Effect.gen(function* () {
          const jobs = yield* startJobs({ ...quickRescue, maxRescues: 1 })
          const job = yield* jobs.insert(Echo, { text: "poison" }, { queue: "other" })
          yield* orphan(jobs.schema, "other", "ghost", "00000000-0000-4000-8000-0000000000ff")
          const discarded = yield* awaitState(jobs, job.id, "discarded")
          expect(discarded.errors.map((e) => e.tag)).toEqual(["Rescued"])
        }),
      )

      it.scoped(
        "escalates when a supervised part keeps dying: awaitFailure fails and the builder is interrupted",
        () =>
          Effect.gen(function* () {
            const escalation = yield* Deferred.make<string>()
            // A LISTEN connection that works just long enough for the runtime to start, then
            // dies at once every time it is opened again.
            const dying = Layer.effect(
              Listener.Listener,
              Effect.map(Listener.Listener, (real) => {
                let opened = 0
                return Listener.make(real.engine, (channel) =>
                  opened++ === 0
                    ? real.listen(channel).pipe(Stream.take(1), Stream.concat(Stream.dieMessage("boom")))
                    : Stream.dieMessage("boom"),
                )
              }),
            )
            const app = Effect.gen(function* () {
              const jobs = yield* startJobs({
                handlers: [echo],
                restartPolicy: { maxRestarts: 2, baseDelay: "10 millis" },
              })
              yield* jobs.awaitFailure.pipe(
                Effect.catchAll((error) => Deferred.succeed(escalation, error.message)),
                // Not a child of the fiber the escalation interrupts.
                Effect.forkDaemon,
              )
              return yield* Effect.never
            }).pipe(
              Effect.scoped,
              Effect.provide(Layer.provideMerge(dying, Layer.context<Listener.Listener>())),
            )
            const exit = yield* Fiber.await(yield* Effect.fork(app))
            expect(Exit.isInterrupted(exit)).toBe(true)
            const message = yield* Deferred.await(escalation)
            expect(message).toContain('"notifier" failed 3 times')
            expect(message).toContain("boom")
          }),
      )

      it.scoped("sends a queue's discarded jobs to its dead-letter queue, history kept", () =>
        Effect.gen(function* () {
          const Fragile = Job.make("fragile", { args: Schema.Struct({}), maxAttempts: 1, queue: "main" })
          const fragile = Fragile.handler(({ job }) =>
            job.queue === "main" ? Effect.fail(new Boom({ message: "broken" })) : Effect.void,
          )
          const jobs = yield* startJobs({
            handlers: [fragile],
            queues: { main: { concurrency: 1, deadLetter: "dead" }, dead: 1 },
          })
          const job = yield* jobs.insert(Fragile, {})
          const done = yield* awaitState(jobs, job.id, "completed")
          expect(done.queue).toBe("dead")
          expect(done.meta).toEqual({ deadLetteredFrom: "main" })
          expect(done.attempt).toBe(1)
          expect(done.errors.map((e) => [e.attempt, e.message])).toEqual([[1, "broken"]])
          const own = yield* Effect.flip(
            startJobs({ queues: { loop: { concurrency: 1, deadLetter: "loop" } } }),
          )
          expect((own as { _tag: string })._tag).toBe("InvalidConfig")
          const cycle = yield* Effect.flip(
            startJobs({
              queues: { a: { concurrency: 1, deadLetter: "b" }, b: { concurrency: 1, deadLetter: "a" } },
            }),
          )
          expect((cycle as { message: string }).message).toContain("cycle: a → b → a")
          // Queues started later are checked against the running ones too.
          yield* jobs.startQueue("p", { concurrency: 1, deadLetter: "q" })
          const later = yield* Effect.flip(jobs.startQueue("q", { concurrency: 1, deadLetter: "p" }))
          expect(later.message).toContain("cycle: p → q → p")
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
