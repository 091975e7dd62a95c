import { Effect, Schema } from "effect"
import { Job, Jobs, Schedules } from "effect-jobs"

const NightlyReport = Job.make("nightly-report", { args: Schema.Struct({ kind: Schema.String }) })
const Cleanup = Job.make("cleanup", { args: Schema.Struct({ olderThanDays: Schema.Number }) })

// Declared in the config: stored (or updated) when the layer starts, on every node alike.
export const JobsLive = Jobs.layer({
  handlers: [NightlyReport.handler(() => Effect.void), Cleanup.handler(() => Effect.void)],
  schedules: [
    // 03:00 every day in Paris; if every node was down at 03:00, run it once when one is back.
    Schedules.cron(
      "nightly-sales",
      "0 3 * * *",
      NightlyReport,
      { kind: "sales" },
      {
        timezone: "Europe/Paris",
        missed: "runOnce",
      },
    ),
  ],
})

// Added, paused, resumed and removed at run time.
export const manage = Effect.gen(function* () {
  const schedules = yield* Schedules.Schedules
  // Six fields: seconds first. At 0 and 30 seconds past every minute.
  yield* schedules.add(Schedules.cron("cleanup", "0,30 * * * * *", Cleanup, { olderThanDays: 30 }))
  yield* schedules.pause("cleanup")
  yield* schedules.resume("cleanup") // goes on from the next tick: none is made up for the pause
  const job = yield* schedules.runNow("cleanup") // its job, now, outside its ticks
  yield* Effect.log(`inserted job ${job.id}`)
  for (const s of yield* schedules.list) {
    yield* Effect.log(`${s.name}: last ${s.lastRunAt?.toISOString()}, next ${s.nextRunAt?.toISOString()}`)
  }
  yield* schedules.remove("cleanup")
})
