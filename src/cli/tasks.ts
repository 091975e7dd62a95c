/**
 * `tasks list|history|run|pause|resume`: the stored recurring tasks of every node and their
 * runs; a run requested, and a task paused or resumed, on every node through the database.
 */
import { Args, Command, Options } from "@effect/cli"
import { Duration, Effect } from "effect"
import { JobsClient } from "../JobsClient.js"
import type * as Tasks from "../Tasks.js"
import * as Global from "./global.js"
import * as Output from "./output.js"

/** Running where, paused, a run requested: what a person needs of a task's state at a glance. */
const status = (t: Tasks.TaskStats) =>
  [
    Output.state(t.status) + (t.runningOn === null ? "" : ` on ${t.runningOn}`),
    t.paused ? Output.yellow("paused") : "",
    t.runRequestedAt === null ? "" : "run requested",
  ]
    .filter((part) => part !== "")
    .join(", ")

/** A task's stats as JSON: the interval in milliseconds. */
const plain = (t: Tasks.TaskStats) => ({ ...t, every: t.every === null ? null : Duration.toMillis(t.every) })

const list = Command.make(
  "list",
  {
    global: Global.options,
    all: Options.boolean("all").pipe(Options.withDescription("Include hidden tasks.")),
  },
  ({ global, all }) =>
    Effect.gen(function* () {
      const tasks = yield* (yield* JobsClient).taskStats({ includeHidden: all })
      yield* Output.print(global.json, tasks.map(plain), () =>
        Output.table(
          ["id", "name", "status", "schedule", "successes", "failures", "last run", "next run", "last error"],
          tasks.map((t) => [
            t.id,
            t.name,
            status(t),
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

const id = Args.text({ name: "id" }).pipe(Args.withDescription("The task's id."))

const history = Command.make(
  "history",
  {
    global: Global.options,
    id,
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

const control = (action: "run" | "pause" | "resume") =>
  Command.make(action, { global: Global.options, id }, ({ global, id }) =>
    Effect.gen(function* () {
      const client = yield* JobsClient
      const stats = yield* action === "run"
        ? client.requestTaskRun(id)
        : action === "pause"
          ? client.pauseTask(id)
          : client.resumeTask(id)
      const nodes = stats.nodes.length === 0 ? undefined : stats.nodes.join(", ")
      yield* Output.print(global.json, plain(stats), () =>
        action === "run"
          ? nodes === undefined
            ? `run of task ${id} requested; no live node has it registered: it runs when one registers it`
            : `run of task ${id} requested; it starts now on ${stats.nodes.length === 1 ? nodes : `one of ${nodes}`}`
          : action === "pause"
            ? `task ${id} paused on every node: not started when due until it resumes`
            : `task ${id} resumed on every node; next run ${Output.cell(stats.nextRunAt)}`,
      )
    }).pipe(Effect.provide(Global.clientLayer(global))),
  ).pipe(
    Command.withDescription(
      action === "run"
        ? "Ask for a run now: a node that has the task registered starts it at once, paused or not."
        : action === "pause"
          ? "Stop starting the task when it comes due, on every node (a run under way finishes)."
          : "Start the task again when it comes due; a run that came due while paused starts at once.",
    ),
  )

export const command = Command.make("tasks").pipe(
  Command.withDescription("List recurring tasks and their history; run, pause and resume them."),
  Command.withSubcommands([list, history, control("run"), control("pause"), control("resume")]),
)
