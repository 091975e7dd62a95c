/**
 * The whole cluster at a glance: `nodes` (the live workers and the leader), `stats` (jobs per
 * queue and state, and what finished in the last minutes) and `doctor` (what needs a person).
 */
import { Command, Options } from "@effect/cli"
import { SqlClient } from "@effect/sql/SqlClient"
import { Data, Effect } from "effect"
import * as Operator from "../internal/api/operator.js"
import { appliedMigrations, latestVersion } from "../internal/store/migrations.js"
import { toDatabaseError } from "../internal/store/retryDatabase.js"
import { InvalidCommand } from "../JobError.js"
import { JobState } from "../JobRecord.js"
import type * as Jobs from "../Jobs.js"
import * as JobsClientModule from "../JobsClient.js"
import { JobsClient } from "../JobsClient.js"
import type * as Tasks from "../Tasks.js"
import * as Global from "./global.js"
import * as Output from "./output.js"

/** Not an error to print: the report says it all, and the exit code tells a script. */
export class NeedsAPerson extends Data.TaggedError("NeedsAPerson") {}

const nodeTimeout = Options.integer("node-timeout").pipe(
  Options.withDescription("Seconds of silence after which a node counts as dead (the workers' nodeTimeout)."),
  Options.withDefault(30),
)

export const nodes = Command.make("nodes", { global: Global.options }, ({ global }) =>
  Effect.gen(function* () {
    const client = yield* JobsClient
    const list = yield* client.nodes
    const leader = yield* client.leader
    yield* Output.print(global.json, { leader, nodes: list }, () =>
      [
        Output.table(
          ["node", "host", "pid", "queues", "started", "heartbeat"],
          list.map((n) => [
            n.id === leader ? `${n.id} ${Output.green("(leader)")}` : n.id,
            n.host,
            String(n.pid),
            n.queues.join(",") || "-",
            Output.cell(n.startedAt),
            Output.cell(n.heartbeatAt),
          ]),
        ),
        "",
        leader === null ? "no leader" : `leader: ${leader}`,
      ].join("\n"),
    )
  }).pipe(Effect.provide(Global.clientLayer(global))),
).pipe(Command.withDescription("The worker nodes whose heartbeat is recent, and the leader."))

/** Counts per queue and state, `~` before an estimate; the states as columns. */
const countsTable = (counts: Operator.Stats["counts"]) => {
  const queues = [...new Set(counts.map((c) => c.queue))]
  const countOf = (queue: string, state: string) => {
    const found = counts.find((c) => c.queue === queue && c.state === state)
    return found === undefined ? "0" : `${found.estimated ? "~" : ""}${found.count}`
  }
  return Output.table(
    ["queue", ...JobState.literals],
    queues.map((queue) => [queue, ...JobState.literals.map((state) => countOf(queue, state))]),
  )
}

/** What finished in each minute seen, by state. */
const finishedTable = (finished: Operator.Stats["finished"]) => {
  const minutesSeen = [...new Set(finished.map((f) => f.minute.getTime()))]
  const finishedOf = (minute: number, state: string) =>
    finished.find((f) => f.minute.getTime() === minute && f.state === state)?.count ?? 0
  return Output.table(
    ["minute", "completed", "discarded", "cancelled"],
    minutesSeen.map((minute) => [
      Output.cell(new Date(minute)),
      String(finishedOf(minute, "completed")),
      String(finishedOf(minute, "discarded")),
      String(finishedOf(minute, "cancelled")),
    ]),
  )
}

/** One line about the stored tasks: how many, which are paused, which run now. */
const tasksLine = (tasks: ReadonlyArray<Tasks.TaskStats>) => {
  const paused = tasks.filter((t) => t.paused).map((t) => t.id)
  const running = tasks.filter((t) => t.status === "running").map((t) => t.id)
  const named = (ids: ReadonlyArray<string>) => (ids.length === 0 ? "" : ` (${ids.join(", ")})`)
  return `tasks: ${tasks.length} stored, ${paused.length} paused${named(paused)}, ${running.length} running${named(running)}`
}

export const stats = Command.make(
  "stats",
  {
    global: Global.options,
    minutes: Options.integer("minutes").pipe(
      Options.withDescription("How many minutes of throughput to show."),
      Options.withDefault(10),
    ),
    exactUpTo: Options.integer("exact-up-to").pipe(
      Options.withDescription(
        "Count jobs exactly up to this many per waiting state and queue, and per finished state; past it, counts are the planner's estimates (~).",
      ),
      Options.withDefault(10_000),
    ),
  },
  ({ global, minutes, exactUpTo }) =>
    Effect.gen(function* () {
      const client = yield* JobsClient
      if (!Number.isInteger(minutes) || minutes < 1 || minutes > 1440) {
        return yield* new InvalidCommand({ message: `--minutes must be 1 to 1440, got ${minutes}` })
      }
      if (!Number.isInteger(exactUpTo) || exactUpTo < 1 || exactUpTo > 1_000_000) {
        return yield* new InvalidCommand({ message: `--exact-up-to must be 1 to 1000000, got ${exactUpTo}` })
      }
      const figures = yield* Operator.stats(yield* Global.store(global.schema), minutes, exactUpTo)
      const tasks = yield* client.taskStats({ includeHidden: true })
      const shown = {
        ...figures,
        tasks: tasks.map((t) => ({ id: t.id, status: t.status, paused: t.paused, runningOn: t.runningOn })),
      }
      yield* Output.print(global.json, shown, () =>
        [
          countsTable(figures.counts),
          "",
          Output.bold(`finished in the last ${minutes} minutes, per minute`),
          finishedTable(figures.finished),
          "",
          tasksLine(tasks),
        ].join("\n"),
      )
    }).pipe(Effect.provide(Global.clientLayer(global))),
).pipe(
  Command.withDescription(
    "Jobs per queue and state, the throughput of the last minutes, and the tasks paused or running.",
  ),
)

/** Waiting work that no live node will take: it waits forever, silently, until a person acts. */
const orphanFindings = (orphans: Jobs.Orphans): ReadonlyArray<Operator.Finding> => [
  ...orphans.queues.map(
    (q): Operator.Finding => ({
      check: "orphaned queues",
      severity: "problem",
      message: `queue ${q.queue} holds ${q.available} available job${q.available === 1 ? "" : "s"} and no live node runs it`,
    }),
  ),
  ...orphans.types.map(
    (t): Operator.Finding => ({
      check: "job types",
      severity: "problem",
      message: `${t.waiting} waiting ${t.type} job${t.waiting === 1 ? "" : "s"} (queue ${t.queues.join(", ")}): no live node has a handler for this type`,
    }),
  ),
  ...(orphans.queues.length === 0 && orphans.types.length === 0
    ? [
        {
          check: "orphans",
          severity: "ok",
          message: "every waiting job has a live node that runs its queue and handles its type",
        } satisfies Operator.Finding,
      ]
    : []),
]

const seconds = (name: string, fallback: number, description: string) =>
  Options.integer(name).pipe(Options.withDescription(description), Options.withDefault(fallback))

export const doctor = Command.make(
  "doctor",
  {
    global: Global.options,
    stuckAfter: seconds("stuck-after", 300, "Seconds an available job may wait before it counts as stuck."),
    longRunningAfter: seconds(
      "long-running-after",
      3600,
      "Seconds a job may execute before it counts as long-running.",
    ),
    nodeTimeout,
  },
  ({ global, stuckAfter, longRunningAfter, nodeTimeout }) =>
    Effect.gen(function* () {
      const sql = yield* SqlClient
      const applied = yield* appliedMigrations(sql, global.schema).pipe(
        Effect.mapError(toDatabaseError("reading the jobs schema's migrations")),
      )
      const level = Math.max(0, ...applied.map((m) => m.version))
      const missing = latestVersion - applied.filter((m) => m.version <= latestVersion).length
      const schemaFinding: Operator.Finding =
        level > latestVersion
          ? {
              check: "schema",
              severity: "problem",
              message: `schema ${global.schema} is at migration ${level}, newer than the ${latestVersion} of this effect-jobs: use the workers' version`,
            }
          : missing > 0
            ? {
                check: "schema",
                severity: "problem",
                message: `schema ${global.schema} is at migration ${level} and lacks ${missing} of this effect-jobs's ${latestVersion}: run effect-jobs migrate`,
              }
            : {
                check: "schema",
                severity: "ok",
                message: `schema ${global.schema} is at migration ${level}, as this effect-jobs expects`,
              }
      // The other checks read tables that only a schema at this level is sure to have.
      const findings =
        schemaFinding.severity === "ok"
          ? [
              schemaFinding,
              ...(yield* Operator.doctor(yield* Global.store(global.schema), {
                stuckSeconds: stuckAfter,
                longRunningSeconds: longRunningAfter,
                nodeTimeoutMillis: nodeTimeout * 1000,
              })),
              ...orphanFindings(
                yield* Effect.flatMap(
                  JobsClientModule.make({ schema: global.schema, nodeTimeout: `${nodeTimeout} seconds` }),
                  ({ client }) => client.orphans,
                ),
              ),
            ]
          : [schemaFinding]
      const problems = findings.filter((f) => f.severity === "problem").length
      const warnings = findings.filter((f) => f.severity === "warning").length
      yield* Output.print(global.json, { problems, warnings, findings }, () =>
        [
          Output.table(
            ["check", "status", "finding"],
            findings.map((f) => [f.check, Output.state(f.severity), f.message]),
          ),
          "",
          problems === 0
            ? `no problem found${warnings === 0 ? "" : `; ${warnings} warning${warnings === 1 ? "" : "s"}`}`
            : `${problems} problem${problems === 1 ? "" : "s"} need${problems === 1 ? "s" : ""} a person`,
        ].join("\n"),
      )
      if (problems > 0) return yield* new NeedsAPerson()
    }).pipe(Effect.provide(Global.sqlLayer(global))),
).pipe(
  Command.withDescription(
    "Check the schema level, nodes and leader, stuck and long-running jobs and dead rows; exits 2 when something needs a person.",
  ),
)
