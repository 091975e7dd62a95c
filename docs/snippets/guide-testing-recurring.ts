import { expect, layer } from "@effect/vitest"
import { Effect, Schema, TestClock } from "effect"
import { Job, Jobs, Schedules, Task, Tasks } from "effect-jobs"
import * as Testing from "effect-jobs/testing"

const Report = Job.make("report", { args: Schema.Struct({ kind: Schema.String }), queue: "reports" })
const report = Report.handler(() => Effect.void)
const failing = Report.handler(({ args }) =>
  args.kind === "broken" ? Effect.fail("broken" as const) : Effect.void,
)
const hourly = Schedules.cron("hourly-report", "0 * * * *", Report, { kind: "hourly" })
const sweep = Task.make({
  id: "sweep",
  state: Schema.Number,
  initial: 0,
  every: "10 minutes",
  run: (n) => Effect.succeed(n + 1),
})

layer(Testing.pglite())((it) => {
  it.effect("cron ticks and task runs come due on the TestClock", () =>
    Effect.gen(function* () {
      yield* TestClock.adjust("1 hour")
      // A tick that has passed is a job as soon as the test looks, or drains.
      yield* Testing.assertEnqueued(Report, { args: { kind: "hourly" } })
      expect((yield* Testing.drain("reports")).success).toBe(1)
      // Due tasks run, each once, when the test says.
      const [run] = yield* Testing.runTasks
      expect(run?.state).toBe(1)
      expect((yield* Effect.flatMap(Tasks.Tasks, (tasks) => tasks.stats(sweep))).state).toBe(1)
    }).pipe(Effect.provide(Testing.layer({ handlers: [report], schedules: [hourly], tasks: [sweep] }))),
  )

  it.effect("a job out of attempts moves to its queue's dead-letter queue", () =>
    Effect.gen(function* () {
      const jobs = yield* Jobs.Jobs
      yield* jobs.insert(Report, { kind: "broken" }, { maxAttempts: 1 })
      // The same queues as Jobs.layer is given: of their settings, deadLetter applies here.
      const drained = yield* Testing.drain("reports")
      expect(drained).toMatchObject({ failure: 1, deadLettered: 1 })
      yield* Testing.assertEnqueued(Report, { queue: "reports-dead", meta: { deadLetteredFrom: "reports" } })
    }).pipe(
      Effect.provide(
        Testing.layer({
          handlers: [failing],
          queues: { reports: { concurrency: 5, deadLetter: "reports-dead" } },
        }),
      ),
    ),
  )
})
