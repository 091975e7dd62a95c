/**
 * What an operator asks of a whole jobs schema beyond single jobs and queues: counts and
 * throughput (`stats`), and the findings of `doctor`, each with how much it needs a person.
 * The command line uses it; it reads only, through the store.
 */
import { Effect } from "effect"
import type { JobRecord } from "../../JobRecord.js"
import type * as Jobs from "../../Jobs.js"
import { toDatabaseError } from "../store/retryDatabase.js"
import type * as Store from "../store/store.js"

export interface Stats {
  readonly counts: ReadonlyArray<Store.StateCount>
  readonly finished: ReadonlyArray<Store.FinishedCount>
  readonly minutes: number
}

/** Counts per queue and state (exact up to `exactUpTo` jobs in a state), and the finished per minute. */
export const stats = (store: Store.Store, minutes: number, exactUpTo: number) =>
  Effect.all({
    counts: store.stateCounts(exactUpTo),
    finished: store.finishedPerMinute(minutes),
  }).pipe(
    Effect.map((read): Stats => ({ ...read, minutes })),
    Effect.mapError(toDatabaseError("reading the jobs' figures")),
  )

/** `problem` needs a person; `warning` may; `ok` is a check that passed. */
export type Severity = "ok" | "warning" | "problem"

export interface Finding {
  readonly check: string
  readonly severity: Severity
  readonly message: string
}

export interface Thresholds {
  /** An available job due longer ago than this is stuck. */
  readonly stuckSeconds: number
  /** An executing job started longer ago than this is long-running. */
  readonly longRunningSeconds: number
  readonly nodeTimeoutMillis: number
}

const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? "" : "s"}`

const nodeFindings = (nodes: ReadonlyArray<Jobs.NodeInfo>, leader: string | null): ReadonlyArray<Finding> => [
  nodes.length === 0
    ? { check: "nodes", severity: "warning", message: "no worker node is alive: no job runs" }
    : {
        check: "nodes",
        severity: "ok",
        message: `${plural(nodes.length, "live node")}: ${nodes.map((n) => n.id).join(", ")}`,
      },
  leader === null
    ? {
        check: "leader",
        severity: nodes.length === 0 ? "warning" : "problem",
        message: "no node leads: nothing stages scheduled jobs, prunes, rescues or enqueues cron ticks",
      }
    : { check: "leader", severity: "ok", message: `${leader} leads the maintenance work` },
]

const stuckFindings = (
  overdue: ReadonlyArray<Store.OverdueQueue>,
  nodes: ReadonlyArray<Jobs.NodeInfo>,
  paused: ReadonlySet<string>,
  seconds: number,
): ReadonlyArray<Finding> => {
  if (overdue.length === 0) {
    return [{ check: "stuck jobs", severity: "ok", message: `no available job has waited over ${seconds} s` }]
  }
  const running = new Set(nodes.flatMap((n) => n.queues))
  return overdue.map(({ queue, count, oldestDue }) => {
    const why = paused.has(queue)
      ? "the queue is paused"
      : running.has(queue)
        ? "the nodes running it are not keeping up"
        : "no live node runs this queue"
    return {
      check: "stuck jobs",
      severity: "problem",
      message: `queue ${queue}: ${plural(count, "available job")} due for over ${seconds} s (oldest due ${oldestDue.toISOString()}): ${why}`,
    }
  })
}

const longRunningFindings = (jobs: ReadonlyArray<JobRecord>, seconds: number): ReadonlyArray<Finding> =>
  jobs.length === 0
    ? [
        {
          check: "long-running jobs",
          severity: "ok",
          message: `no job has been executing for over ${seconds} s`,
        },
      ]
    : jobs.map((job) => ({
        check: "long-running jobs",
        severity: "warning",
        message: `job ${job.id} (${job.type}, queue ${job.queue}) has been executing on ${job.attemptedBy ?? "?"} since ${job.attemptedAt?.toISOString() ?? "?"}`,
      }))

// Dead rows slow every claim that walks past them; a few thousand is normal churn.
const deadRowsFinding = (health: Store.TableHealth | undefined): Finding => {
  if (health === undefined) {
    return {
      check: "dead rows",
      severity: "ok",
      message: "the server has no statistics for the jobs table yet",
    }
  }
  const many = health.deadRows > 10_000 && health.deadRows > health.liveRows * 0.2
  const last = [health.lastVacuum, health.lastAutovacuum]
    .filter((d): d is Date => d !== null)
    .sort((a, b) => b.getTime() - a.getTime())[0]
  return {
    check: "dead rows",
    severity: many ? "warning" : "ok",
    message: `${health.deadRows} dead and ${health.liveRows} live rows in the jobs table; last vacuumed ${last?.toISOString() ?? "never"}${many ? ": vacuum it, or check that autovacuum (or the leader's vacuum) runs" : ""}`,
  }
}

/** The findings about a schema at this version's level: nodes, leader, stuck and long-running jobs, dead rows. */
export const doctor = (store: Store.Store, thresholds: Thresholds) =>
  Effect.gen(function* () {
    const nodes = yield* store.nodes(thresholds.nodeTimeoutMillis)
    const leader = yield* store.leader
    const overdue = yield* store.overdue(thresholds.stuckSeconds)
    const paused = new Set<string>()
    for (const { queue } of overdue) if (yield* store.isPaused(queue)) paused.add(queue)
    const long = yield* store.longRunning(thresholds.longRunningSeconds, 20)
    const health = yield* store.jobsTableHealth
    return [
      ...nodeFindings(nodes, leader),
      ...stuckFindings(overdue, nodes, paused, thresholds.stuckSeconds),
      ...longRunningFindings(long, thresholds.longRunningSeconds),
      deadRowsFinding(health),
    ]
  }).pipe(Effect.mapError(toDatabaseError("examining the jobs schema")))
