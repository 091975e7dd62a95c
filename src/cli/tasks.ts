/** `tasks list|history`: the stored recurring tasks of every node, and their runs. */
import { Args, Command, Options } from "@effect/cli"
import { Duration, Effect } from "effect"
import { JobsClient } from "../JobsClient.js"
import * as Global from "./global.js"
import * as Output from "./output.js"

const list = Command.make(
  "list",
  {
    global: Global.options,
    all: Options.boolean("all").pipe(Options.withDescription("Include hidden tasks.")),
  },
  ({ global, all }) =>
    Effect.gen(function* () {
      const tasks = yield* (yield* JobsClient).taskStats({ includeHidden: all })
      const shown = tasks.map((t) => ({ ...t, every: t.every === null ? null : Duration.toMillis(t.every) }))
      yield* Output.print(global.json, shown, () =>
        Output.table(
          ["id", "name", "status", "schedule", "successes", "failures", "last run", "next run", "last error"],
          tasks.map((t) => [
            t.id,
            t.name,
            Output.state(t.status === "running" ? `running` : t.status) +
              (t.runningOn === null ? "" : ` on ${t.runningOn}`),
            t.cron !== null
              ? t.cron
              : t.every !== null && t.recurs
                ? `every ${Duration.format(t.every)}`
                : "once",
            String(t.successes),
            String(t.failures),
            Output.cell(t.lastRunAt),
            Output.cell(t.nextRunAt),
            t.lastError?.split("\n")[0] ?? "-",
          ]),
        ),
      )
    }).pipe(Effect.provide(Global.clientLayer(global))),
).pipe(Command.withDescription("List the recurring tasks every node has registered, with their counters."))

const history = Command.make(
  "history",
  {
    global: Global.options,
    id: Args.text({ name: "id" }).pipe(Args.withDescription("The task's id.")),
    limit: Options.integer("limit").pipe(
      Options.withDescription("At most this many runs."),
      Options.withDefault(20),
    ),
  },
  ({ global, id, limit }) =>
    Effect.gen(function* () {
      const runs = yield* (yield* JobsClient).taskHistory(id, { limit })
      yield* Output.print(global.json, runs, () =>
        Output.table(
          ["run", "node", "trigger", "outcome", "started", "finished", "error"],
          runs.map((r) => [
            String(r.id),
            r.node,
            r.trigger,
            Output.state(r.outcome),
            Output.cell(r.startedAt),
            Output.cell(r.finishedAt),
            r.error?.split("\n")[0] ?? "-",
          ]),
        ),
      )
    }).pipe(Effect.provide(Global.clientLayer(global))),
).pipe(Command.withDescription("A task's runs, newest first."))

export const command = Command.make("tasks").pipe(
  Command.withDescription("List recurring tasks and their run history."),
  Command.withSubcommands([list, history]),
)
