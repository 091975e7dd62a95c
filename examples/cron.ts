/**
 * Cron schedules: `npx tsx examples/cron.ts`
 *
 * A schedule declared in the layer's config inserts a job every 2 seconds; another is added
 * at run time with a time zone and a policy for missed ticks. Each tick makes exactly one job,
 * however many nodes run the same config. The listing shows each schedule's next and last
 * run; pausing stops the ticks, resuming starts again from the next one.
 */
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import { Console, Effect, Layer, Logger, LogLevel, Schema } from "effect"
import { Job, Jobs, JobsPglite, Schedules } from "effect-jobs"

const Heartbeat = Job.make("heartbeat", { args: Schema.Struct({ source: Schema.String }) })
const DailyDigest = Job.make("daily-digest", { args: Schema.Struct({ team: Schema.String }) })

const time = (date: Date | null) => date?.toISOString().slice(11, 19) ?? "-"

const heartbeat = Heartbeat.handler(({ args, job }) =>
  Console.log(`    > heartbeat from ${args.source}, tick ${String(job.meta.tick).slice(11, 19)}`),
)
const dailyDigest = DailyDigest.handler(({ args }) => Console.log(`    > digest for team ${args.team}`))

const JobsLive = Jobs.layer({
  handlers: [heartbeat, dailyDigest],
  // Six fields: seconds first. Every 2 seconds.
  schedules: [Schedules.cron("heartbeat", "*/2 * * * * *", Heartbeat, { source: "config" })],
  stageInterval: "100 millis",
}).pipe(Layer.provide(JobsPglite.layer()))

const printSchedules = Effect.gen(function* () {
  const schedules = yield* Schedules.Schedules
  for (const s of yield* schedules.list) {
    yield* Console.log(
      `  ${s.name.padEnd(12)} ${s.expression.padEnd(15)} ${(s.timezone ?? "UTC").padEnd(14)} paused=${String(s.paused).padEnd(5)} last=${time(s.lastRunAt)} next=${s.nextRunAt?.toISOString() ?? "-"}`,
    )
  }
})

const program = Effect.gen(function* () {
  const jobs = yield* Jobs.Jobs
  const schedules = yield* Schedules.Schedules

  // At run time: 08:30 on weekdays in Paris. Ticks missed while no node ran are run once.
  yield* schedules.add(
    Schedules.cron(
      "digest",
      "30 8 * * 1-5",
      DailyDigest,
      { team: "core" },
      {
        timezone: "Europe/Paris",
        missed: "runOnce",
      },
    ),
  )
  // A bad expression is refused with an error that names the schedule.
  const refused = yield* Effect.flip(
    schedules.add(Schedules.cron("broken", "61 * * * *", Heartbeat, { source: "x" })),
  )
  yield* Console.log(`Refused: ${refused.message}\n`)

  yield* Console.log("Letting the heartbeat tick for 5 seconds:")
  yield* Effect.sleep("5 seconds")
  yield* Console.log("\nSchedules:")
  yield* printSchedules

  yield* Console.log("\nPausing the heartbeat for 3 seconds (no jobs), then resuming:")
  yield* schedules.pause("heartbeat")
  yield* Effect.sleep("3 seconds")
  yield* schedules.resume("heartbeat")
  yield* Effect.sleep("3 seconds")

  const made = yield* jobs.list({ type: "heartbeat", limit: 100 })
  yield* Console.log(`\n${made.length} heartbeat jobs in all, one per tick:`)
  yield* Console.log(
    `  ${made
      .map((j) => String(j.meta.tick).slice(11, 19))
      .reverse()
      .join(" ")}`,
  )
  yield* schedules.remove("digest")
})

program.pipe(
  Effect.provide(JobsLive),
  Effect.zipRight(Console.log("Stopped.")),
  Logger.withMinimumLogLevel(LogLevel.Error),
  NodeRuntime.runMain,
)
