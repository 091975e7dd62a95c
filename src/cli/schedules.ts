/**
 * `schedules list|pause|resume|run`: the stored cron schedules, paused and resumed for every
 * node, and a schedule's job inserted now.
 */
import { Args, Command } from "@effect/cli"
import { Effect } from "effect"
import type * as SchedulesModule from "../Schedules.js"
import { Schedules } from "../Schedules.js"
import * as Global from "./global.js"
import * as Output from "./output.js"

const rows = (schedules: ReadonlyArray<SchedulesModule.ScheduleInfo>) =>
  Output.table(
    ["name", "cron", "type", "queue", "paused", "last run", "next run"],
    schedules.map((s) => [
      s.name,
      s.timezone === null ? s.expression : `${s.expression} (${s.timezone})`,
      s.type,
      s.queue,
      s.paused ? Output.yellow("paused") : "no",
      Output.cell(s.lastRunAt),
      Output.cell(s.nextRunAt),
    ]),
  )

const list = Command.make("list", { global: Global.options }, ({ global }) =>
  Effect.gen(function* () {
    const schedules = yield* (yield* Schedules).list
    yield* Output.print(global.json, schedules, () => rows(schedules))
  }).pipe(Effect.provide(Global.clientLayer(global))),
).pipe(Command.withDescription("List the cron schedules with their last and next run."))

const pauseOrResume = (action: "pause" | "resume") =>
  Command.make(
    action,
    {
      global: Global.options,
      name: Args.text({ name: "name" }).pipe(Args.withDescription("The schedule's name.")),
    },
    ({ global, name }) =>
      Effect.gen(function* () {
        const schedules = yield* Schedules
        const info = yield* action === "pause" ? schedules.pause(name) : schedules.resume(name)
        yield* Output.print(global.json, info, () =>
          action === "pause"
            ? `schedule ${name} paused: no job is enqueued until it resumes`
            : `schedule ${name} resumed; next run ${Output.cell(info.nextRunAt)}`,
        )
      }).pipe(Effect.provide(Global.clientLayer(global))),
  ).pipe(
    Command.withDescription(
      action === "pause"
        ? "Stop enqueuing the schedule's jobs, on every node."
        : "Enqueue the schedule's jobs again, from its next tick.",
    ),
  )

const run = Command.make(
  "run",
  {
    global: Global.options,
    name: Args.text({ name: "name" }).pipe(Args.withDescription("The schedule's name.")),
  },
  ({ global, name }) =>
    Effect.gen(function* () {
      const job = yield* (yield* Schedules).runNow(name)
      yield* Output.print(
        global.json,
        job,
        () => `schedule ${name} inserted job ${job.id} (${job.type}, queue ${job.queue})`,
      )
    }).pipe(Effect.provide(Global.clientLayer(global))),
).pipe(
  Command.withDescription(
    "Insert the schedule's job now, outside its ticks (paused or not), with meta.manual; its next run stays.",
  ),
)

export const command = Command.make("schedules").pipe(
  Command.withDescription("List, pause, resume and run cron schedules."),
  Command.withSubcommands([list, pauseOrResume("pause"), pauseOrResume("resume"), run]),
)
