/**
 * The testing layer on both engines, on the TestClock: manual and inline modes, drain, cron
 * schedules, tasks, dead-letter queues, and the assertions with their failure messages.
 */
import { describe, expect, layer } from "@effect/vitest"
import { Effect, Fiber, Layer, Schema, TestClock } from "effect"
import * as Job from "../../src/Job.js"
import * as Jobs from "../../src/Jobs.js"
import * as Schedules from "../../src/Schedules.js"
import * as Task from "../../src/Task.js"
import * as Tasks from "../../src/Tasks.js"
import * as Testing from "../../src/Testing.js"
import { postgres, postgresAvailable } from "../support/engines.js"

const Email = Job.make("email", {
  args: Schema.Struct({ to: Schema.String, subject: Schema.String, sendAt: Schema.optional(Schema.Date) }),
  queue: "mail",
  maxAttempts: 2,
  backoff: "30 seconds",
})
class Bounce extends Schema.TaggedError<Bounce>()("Bounce", { to: Schema.String }) {}
const sent: Array<string> = []
const email = Email.handler(({ args }) =>
  args.to.endsWith("@bounce.test")
    ? Effect.fail(new Bounce({ to: args.to }))
    : Effect.sync(() => {
        sent.push(args.to)
      }),
)

const Signup = Job.make("signup", { args: Schema.Struct({ user: Schema.String }) })
const signup = Signup.handler(({ args }) =>
  Effect.flatMap(Jobs.Jobs, (jobs) =>
    jobs.insert(Email, { to: `${args.user}@example.com`, subject: "Welcome" }),
  ).pipe(Effect.asVoid),
)

const handlers = [email, signup] as const

// Every minute, a digest email; the schedule's job runs through the email handler.
const digest = Schedules.cron("digest", "* * * * *", Email, { to: "digest@example.com", subject: "Digest" })

// Counts its runs in its state, and asks for an email on each.
const counter = Task.make({
  id: "counter",
  state: Schema.Number,
  initial: 0,
  every: "1 minute",
  run: (n) =>
    Effect.flatMap(Jobs.Jobs, (jobs) =>
      jobs.insert(Email, { to: `run-${n + 1}@example.com`, subject: "Run" }),
    ).pipe(Effect.as(n + 1)),
})

const engines = [
  { name: "pglite", engine: Testing.pglite(), isolation: "truncate" as const },
  ...(postgresAvailable ? [{ name: "postgres", engine: postgres.layer, isolation: "schema" as const }] : []),
]

for (const { name, engine, isolation } of engines) {
  describe(`the testing layer on ${name}`, () => {
    layer(engine, { timeout: 120_000 })((it) => {
      const test = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
        Effect.provide(effect, Testing.layer({ handlers, isolation }))

      it.effect("manual mode stores inserts and runs nothing until drain", () =>
        test(
          Effect.gen(function* () {
            sent.length = 0
            const jobs = yield* Jobs.Jobs
            const job = yield* jobs.insert(Email, { to: "a@example.com", subject: "Hi" })
            expect(job.state).toBe("available")
            expect(sent).toEqual([])
            const found = yield* Testing.assertEnqueued(Email, {
              args: { to: "a@example.com" },
              queue: "mail",
            })
            expect(found.args.subject).toBe("Hi")
            const drained = yield* Testing.drain("mail")
            expect(drained).toMatchObject({ success: 1, failure: 0 })
            expect(sent).toEqual(["a@example.com"])
            yield* Testing.refuteEnqueued(Email)
            yield* Testing.assertEnqueued(Email, { state: "completed" })
          }),
        ),
      )

      it.effect("each test starts with no jobs", () =>
        test(
          Effect.gen(function* () {
            expect(yield* Testing.allEnqueued(Email, { state: ["available", "completed"] })).toEqual([])
          }),
        ),
      )

      it.effect("inline mode runs the job before insert returns; the mode switches within a test", () =>
        test(
          Effect.gen(function* () {
            sent.length = 0
            const jobs = yield* Jobs.Jobs
            yield* Testing.setMode("inline")
            const done = yield* jobs.insert(Email, { to: "b@example.com", subject: "Now" })
            expect(done.state).toBe("completed")
            expect(sent).toEqual(["b@example.com"])
            const failed = yield* jobs.insert(Email, { to: "x@bounce.test", subject: "Now" })
            expect(failed.state).toBe("retryable")
            expect(failed.errors[0]?.tag).toBe("Bounce")
            yield* Testing.setMode("manual")
            const waiting = yield* jobs.insert(Email, { to: "c@example.com", subject: "Later" })
            expect(waiting.state).toBe("available")
            const inline = yield* Testing.withMode(
              "inline",
              jobs.insert(Email, { to: "d@example.com", subject: "x" }),
            )
            expect(inline.state).toBe("completed")
            expect(yield* Effect.flatMap(Testing.JobsTest, (t) => t.mode)).toBe("manual")
          }),
        ),
      )

      it.effect(
        "TestClock.adjust makes scheduled jobs and backoffs due; drain's options run them sooner",
        () =>
          test(
            Effect.gen(function* () {
              const jobs = yield* Jobs.Jobs
              yield* jobs.insert(Email, { to: "later@example.com", subject: "s" }, { scheduleIn: "1 hour" })
              yield* Testing.assertEnqueued(Email, { state: "scheduled", scheduledIn: "1 hour" })
              expect(yield* Testing.drain("mail")).toMatchObject({ success: 0 })
              yield* TestClock.adjust("1 hour")
              expect(yield* Testing.drain("mail")).toMatchObject({ success: 1 })

              yield* jobs.insert(Email, { to: "y@bounce.test", subject: "s" })
              const first = yield* Testing.drain("mail")
              expect(first).toMatchObject({ failure: 1 })
              yield* Testing.assertEnqueued(Email, { state: "retryable", scheduledIn: "30 seconds" })
              expect(yield* Testing.drain("mail")).toMatchObject({ failure: 0 })
              yield* TestClock.adjust("30 seconds")
              expect(yield* Testing.drain("mail")).toMatchObject({ failure: 1 })
              yield* Testing.assertEnqueued(Email, { state: "discarded" })

              yield* jobs.insert(Email, { to: "z@bounce.test", subject: "s" })
              yield* jobs.insert(Email, { to: "w@example.com", subject: "s" }, { scheduleIn: "1 day" })
              const all = yield* Testing.drain("mail", { withRetries: true, withScheduled: true })
              expect(all).toMatchObject({ success: 1, failure: 2 })
            }),
          ),
      )

      it.effect("drain with recursion runs the jobs that jobs insert; limit stops it", () =>
        test(
          Effect.gen(function* () {
            const jobs = yield* Jobs.Jobs
            yield* jobs.insert(Signup, { user: "ann" })
            yield* jobs.insert(Signup, { user: "bob" })
            expect(yield* Testing.drain("default", { limit: 1 })).toMatchObject({ success: 1 })
            expect(yield* Testing.drain("default")).toMatchObject({ success: 1 })
            yield* Testing.assertEnqueued(Email, { args: { to: "ann@example.com" } })
            expect((yield* Testing.allEnqueued(Email)).map((job) => job.args.to)).toEqual([
              "ann@example.com",
              "bob@example.com",
            ])
            yield* jobs.insert(Signup, { user: "cid" })
            const withEmails = yield* Effect.all([Testing.drain("default"), Testing.drain("mail")])
            expect(withEmails.map((result) => result.success)).toEqual([1, 3])
          }),
        ),
      )

      it.effect("assertEnqueued waits for a job another fiber inserts", () =>
        test(
          Effect.gen(function* () {
            const jobs = yield* Jobs.Jobs
            const fiber = yield* Effect.fork(
              Effect.zipRight(
                Effect.promise(() => new Promise((resolve) => setTimeout(resolve, 50))),
                jobs.insert(Email, { to: "late@example.com", subject: "s" }),
              ),
            )
            const found = yield* Testing.assertEnqueued(
              Email,
              { args: { to: "late@example.com" } },
              { wait: "5 seconds" },
            )
            expect(found.args.to).toBe("late@example.com")
            yield* Fiber.join(fiber)
          }),
        ),
      )

      it.effect("failure messages list the jobs that were there", () =>
        test(
          Effect.gen(function* () {
            const jobs = yield* Jobs.Jobs
            const none = yield* Effect.flip(Testing.assertEnqueued(Email, { args: { to: "a@example.com" } }))
            expect(none._tag).toBe("JobAssertionFailed")
            expect(none.message).toBe(
              'Expected a "email" job with args {"to":"a@example.com"}, state available or scheduled, but none matched.\n"email" jobs in the database: none',
            )
            const job = yield* jobs.insert(
              Email,
              { to: "b@example.com", subject: "Hi" },
              { priority: 3, meta: { k: 1 } },
            )
            const other = yield* Effect.flip(
              Testing.assertEnqueued(
                Email,
                { args: { to: "a@example.com" }, queue: "mail" },
                { wait: "20 millis" },
              ),
            )
            expect(other.message).toBe(
              [
                'Expected a "email" job with args {"to":"a@example.com"}, queue "mail", state available or scheduled within 20ms, but none matched.',
                '"email" jobs in the database:',
                `  #${job.id} email available queue=mail priority=3 scheduledAt=${job.scheduledAt.toISOString()} args={"to":"b@example.com","subject":"Hi"} meta={"k":1}`,
              ].join("\n"),
            )
            const refuted = yield* Effect.flip(Testing.refuteEnqueued(Email, { meta: { k: 1 } }))
            expect(refuted.message).toContain(
              'Expected no "email" job with meta {"k":1}, state available or scheduled, but 1 matched.',
            )
            expect(refuted.message).toContain(`#${job.id} email available`)
            const late = yield* Effect.flip(
              Testing.assertEnqueued(Email, { scheduledIn: "1 hour", tolerance: "1 minute" }),
            )
            expect(late.message).toContain("scheduledIn 1h, tolerance 1m")
          }),
        ),
      )

      it.effect("the runtime's queue operations say that the testing layer runs no queues", () =>
        test(
          Effect.gen(function* () {
            const jobs = yield* Jobs.Jobs
            const error = yield* Effect.flip(jobs.startQueue("mail", 1))
            expect(error.message).toContain("the testing layer runs no queues")
            expect(yield* jobs.queues).toEqual([])
            yield* jobs.insert(Email, { to: "f@example.com", subject: "s" })
            yield* jobs.flush("mail")
            yield* Testing.assertEnqueued(Email, { state: "completed" })
          }),
        ),
      )

      it.effect("TestClock.adjust makes cron ticks due: the looks and drain see their jobs", () =>
        Effect.gen(function* () {
          yield* Testing.refuteEnqueued(Email)
          expect(yield* Testing.drain("mail")).toMatchObject({ success: 0 })
          yield* TestClock.adjust("1 minute")
          const job = yield* Testing.assertEnqueued(Email, { args: { to: "digest@example.com" } })
          expect(job.meta.schedule).toBe("digest")
          expect(yield* Testing.drain("mail")).toMatchObject({ success: 1 })
          yield* TestClock.adjust("1 minute")
          expect(yield* Testing.drain("mail")).toMatchObject({ success: 1 })
          const schedules = yield* Schedules.Schedules
          const info = yield* schedules.get("digest")
          expect(info.lastRunAt).not.toBeNull()
          yield* schedules.pause("digest")
          yield* TestClock.adjust("5 minutes")
          expect(yield* Testing.drain("mail")).toMatchObject({ success: 0 })
        }).pipe(Effect.provide(Testing.layer({ handlers, isolation, schedules: [digest] }))),
      )

      it.effect("in inline mode a cron tick's job runs as soon as the test looks", () =>
        Effect.gen(function* () {
          sent.length = 0
          yield* TestClock.adjust("1 minute")
          const job = yield* Testing.assertEnqueued(Email, {
            args: { to: "digest@example.com" },
            state: "completed",
          })
          expect(job.meta.schedule).toBe("digest")
          expect(sent).toEqual(["digest@example.com"])
          expect(yield* Testing.drain("mail")).toMatchObject({ success: 0 })

          // runNow is an insert: in inline mode it answers the job run; in manual mode it waits.
          const schedules = yield* Schedules.Schedules
          expect((yield* schedules.runNow("digest")).state).toBe("completed")
          yield* Testing.setMode("manual")
          expect((yield* schedules.runNow("digest")).state).toBe("available")
          yield* Testing.setMode("inline")
          yield* Testing.assertEnqueued(Email, { args: { to: "digest@example.com" }, state: "available" })
          expect(sent).toEqual(["digest@example.com", "digest@example.com"])
        }).pipe(Effect.provide(Testing.layer({ handlers, isolation, schedules: [digest], mode: "inline" }))),
      )

      it.effect("tasks run when due by the TestClock and runTasks is called", () =>
        Effect.gen(function* () {
          expect(yield* Testing.runTasks).toEqual([])
          yield* TestClock.adjust("1 minute")
          const [run, ...others] = yield* Testing.runTasks
          expect(others).toEqual([])
          expect(run).toMatchObject({ taskId: "counter", outcome: "success", state: 1, trigger: "schedule" })
          yield* Testing.assertEnqueued(Email, { args: { to: "run-1@example.com" } })
          yield* TestClock.adjust("30 seconds")
          expect(yield* Testing.runTasks).toEqual([])
          yield* TestClock.adjust("30 seconds")
          expect((yield* Testing.runTasks).map((r) => r.state)).toEqual([2])
          const tasks = yield* Tasks.Tasks
          expect((yield* tasks.stats(counter)).state).toBe(2)
          expect((yield* tasks.runNow("counter")).state).toBe(3)
        }).pipe(Effect.provide(Testing.layer({ handlers, isolation, tasks: [counter] }))),
      )

      it.effect(
        "a job out of attempts moves to its dead-letter queue; drain counts it and drains it there",
        () =>
          Effect.gen(function* () {
            const jobs = yield* Jobs.Jobs
            yield* jobs.insert(Email, { to: "dead@bounce.test", subject: "s" })
            const drained = yield* Testing.drain("mail", { withRetries: true })
            expect(drained).toMatchObject({ failure: 2, deadLettered: 1 })
            expect(drained.outcomes.map((outcome) => outcome.state)).toEqual(["retryable", "available"])
            const moved = yield* Testing.assertEnqueued(Email, { queue: "mail-dead" })
            expect(moved.meta).toEqual({ deadLetteredFrom: "mail" })
            expect(moved.attempt).toBe(0)
            const again = yield* Testing.drain("mail-dead", { withRetries: true })
            expect(again).toMatchObject({ failure: 2, deadLettered: 0 })
            yield* Testing.assertEnqueued(Email, { queue: "mail-dead", state: "discarded" })

            yield* Testing.setMode("inline")
            const inline = yield* jobs.insert(
              Email,
              { to: "x@bounce.test", subject: "s" },
              { maxAttempts: 1 },
            )
            expect(inline).toMatchObject({ state: "available", queue: "mail-dead" })
          }).pipe(
            Effect.provide(
              Testing.layer({
                handlers,
                isolation,
                queues: { mail: { concurrency: 2, deadLetter: "mail-dead" }, default: 5 },
              }),
            ),
          ),
      )

      it.effect("refuses bad declarations at build with a typed error that says what is wrong", () =>
        Effect.gen(function* () {
          const build = (options: Testing.Options) =>
            Effect.flip(Effect.scoped(Layer.build(Testing.layer({ ...options, isolation }))))
          const cycle = yield* build({
            queues: { a: { concurrency: 1, deadLetter: "b" }, b: { concurrency: 1, deadLetter: "a" } },
          })
          expect(cycle.message).toBe(
            'option queues.a.deadLetter is "b": dead-letter queues lead from "a" back to "a": a job would move between them forever',
          )
          const badName = yield* build({ queues: { a: { concurrency: 1, deadLetter: "" } } })
          expect(badName).toMatchObject({ _tag: "InvalidConfig", option: "queues.a.deadLetter" })
          const twice = yield* build({ schedules: [digest, digest] })
          expect(twice.message).toContain("two schedules are declared with this name")
          const sameTask = yield* build({ tasks: [counter, counter] })
          expect(sameTask._tag).toBe("TaskAlreadyRegistered")
          const small = yield* Effect.flip(
            Effect.provide(
              Effect.flatMap(Jobs.Jobs, (jobs) =>
                jobs.insert(Email, { to: "a@example.com", subject: "x".repeat(64) }),
              ),
              Testing.layer({ isolation, maxPayloadBytes: 32 }),
            ),
          )
          expect(small.message).toMatch(
            /^the args of a "email" job encode to \d+ bytes, over the limit of 32 bytes/,
          )
          const badCron = yield* build({
            schedules: [Schedules.cron("bad", "not cron", Email, { to: "a@example.com", subject: "s" })],
          })
          expect(badCron._tag).toBe("InvalidSchedule")
        }),
      )

      it.effect("a bad schema name is refused with InvalidConfig", () =>
        Effect.gen(function* () {
          const error = yield* Effect.flip(
            Layer.build(Testing.layer({ schema: "Bad-Name" })).pipe(Effect.scoped),
          )
          expect(error._tag).toBe("InvalidConfig")
          expect(error.message).toContain("schema")
        }),
      )
    })
  })
}
