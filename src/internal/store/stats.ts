/**
 * Figures about the jobs table as a whole, for an operator: counts per queue and state, recent
 * throughput, and what `doctor` looks for (long-running and overdue jobs, dead rows).
 */
import type { SqlError } from "@effect/sql/SqlError"
import { Effect } from "effect"
import type { JobRecord, JobState } from "../../JobRecord.js"
import type { StoreContext } from "./context.js"
import { plannedRows } from "./jobQuery.js"
import { columns, recordFromRow, toDate } from "./records.js"

export interface StateCount {
  readonly queue: string
  readonly state: JobState
  readonly count: number
  /** True when `count` is the planner's estimate: the state holds more jobs than counted. */
  readonly estimated: boolean
}

export interface FinishedCount {
  /** The start of the minute. */
  readonly minute: Date
  readonly state: "completed" | "cancelled" | "discarded"
  readonly count: number
}

export interface OverdueQueue {
  readonly queue: string
  /** Available jobs due longer ago than asked. */
  readonly count: number
  readonly oldestDue: Date
}

export interface TableHealth {
  readonly liveRows: number
  readonly deadRows: number
  readonly lastVacuum: Date | null
  readonly lastAutovacuum: Date | null
}

export interface StatsStore {
  /**
   * Jobs per queue and state: exact for a waiting or executing state's queue that holds at most
   * `exactUpTo` of them, and for a finished state that holds at most `exactUpTo`; the
   * planner's estimates past that, flagged. Reads at most `exactUpTo + 1` index entries per
   * waiting state and queue, and per finished state, however large the table.
   */
  readonly stateCounts: (exactUpTo: number) => Effect.Effect<ReadonlyArray<StateCount>, SqlError>
  /** Jobs finished in each of the last `minutes` minutes (by the database's clock), by state. */
  readonly finishedPerMinute: (minutes: number) => Effect.Effect<ReadonlyArray<FinishedCount>, SqlError>
  /** Jobs executing for longer than `seconds`, longest first, at most `limit`. */
  readonly longRunning: (seconds: number, limit: number) => Effect.Effect<ReadonlyArray<JobRecord>, SqlError>
  /** Per queue, the available jobs that have been due for longer than `seconds`. */
  readonly overdue: (seconds: number) => Effect.Effect<ReadonlyArray<OverdueQueue>, SqlError>
  /** The server's count of live and dead rows of the jobs table; undefined before it has any. */
  readonly jobsTableHealth: Effect.Effect<TableHealth | undefined, SqlError>
}

/**
 * Runs a read with the plans it needs whatever the statistics say. The partial indexes carry
 * no statistics the planner reads for their expressions (finish times), and a state's share of
 * the table is often far from what was last analyzed, so left alone it may read the whole
 * table where the index reads a few pages. The settings last until the read's transaction ends.
 */
const indexOnly =
  ({ sql, unprepared }: StoreContext, settings: ReadonlyArray<string>) =>
  <A>(text: string, values: ReadonlyArray<unknown>) =>
    sql.withTransaction(
      Effect.zipRight(
        // Without JIT too: the costs of the paths turned off would make PostgreSQL compile a
        // read of a few pages, which takes longer than the read.
        Effect.forEach([...settings, "jit"], (setting) => unprepared(`SET LOCAL ${setting} = off`, [])),
        unprepared<A>(text, values),
      ),
    )

const finishedAt = "COALESCE(completed_at, cancelled_at, discarded_at)"

/**
 * A waiting or executing state's queues, each with its jobs counted up to `$1`: the queues
 * found by skipping through an index that holds the state by queue (the claim index for
 * available jobs, the state index for the others), one probe per queue, and each queue's jobs
 * read from it up to the bound.
 */
const perQueue = (jobs: string, state: JobState) => `SELECT * FROM (
  WITH RECURSIVE queues AS (
    (SELECT queue FROM ${jobs} WHERE state = '${state}' ORDER BY queue LIMIT 1)
    UNION ALL
    SELECT (SELECT j.queue FROM ${jobs} j WHERE j.state = '${state}' AND j.queue > queues.queue
            ORDER BY j.queue LIMIT 1)
    FROM queues WHERE queues.queue IS NOT NULL
  )
  SELECT '${state}' AS state, queue, (SELECT count(*)::integer FROM (
    SELECT 1 FROM ${jobs} j WHERE j.state = '${state}' AND j.queue = queues.queue LIMIT $1) c) AS count
  FROM queues WHERE queue IS NOT NULL) s${state}`

/**
 * A finished state's newest jobs, up to `$1`, per queue, from the finished index (which has no
 * queue to skip through): its exact counts when the state holds no more, its mix otherwise.
 */
const newestFinished = (jobs: string, state: JobState) =>
  `SELECT '${state}' AS state, queue, count(*)::integer AS count FROM (
    SELECT queue FROM ${jobs} WHERE state = '${state}' ORDER BY state DESC, ${finishedAt} DESC LIMIT $1
  ) f${state} GROUP BY queue`

const unfinished: ReadonlyArray<JobState> = ["available", "scheduled", "executing", "retryable"]
const finished: ReadonlyArray<JobState> = ["completed", "cancelled", "discarded"]

/**
 * Counts per queue and state, exact up to a bound, estimated past it. A waiting or executing
 * state is counted per queue up to the bound, so a backlog is exact unless one queue holds more;
 * a finished state past the bound has the planner's estimate of its total, split among the
 * queues as among its newest jobs. Reads at most the bound's worth of index entries per state
 * and queue (and the bound's worth per finished state), however large the table.
 */
export const boundedStateCounts = (context: StoreContext) => {
  const { jobs, unprepared } = context
  // The states are a closed list, written into the statement so that the planner matches each
  // branch to its partial index. Walked in index order and cut at the bound: no bitmap of a
  // whole state, no sort.
  const sample = indexOnly(context, ["enable_seqscan", "enable_bitmapscan", "enable_sort"])
  const statement = [
    ...unfinished.map((state) => perQueue(jobs, state)),
    ...finished.map((state) => newestFinished(jobs, state)),
  ].join("\nUNION ALL\n")

  const estimate = (where: string, params: ReadonlyArray<unknown>) =>
    Effect.map(
      unprepared<{ "QUERY PLAN": unknown }>(
        `EXPLAIN (FORMAT JSON) SELECT 1 FROM ${jobs} WHERE ${where}`,
        params,
      ),
      plannedRows,
    )

  return (exactUpTo: number) =>
    Effect.gen(function* () {
      const rows = (yield* sample<{ state: JobState; queue: string; count: number | string }>(statement, [
        exactUpTo + 1,
      ])).map((r) => ({ state: r.state, queue: r.queue, count: Number(r.count) }))
      const counts: Array<StateCount> = []
      for (const row of rows.filter((r) => unfinished.includes(r.state))) {
        counts.push(
          row.count <= exactUpTo
            ? { ...row, estimated: false }
            : {
                ...row,
                count: Math.max(
                  row.count,
                  yield* estimate("state = $1 AND queue = $2", [row.state, row.queue]),
                ),
                estimated: true,
              },
        )
      }
      for (const state of finished) {
        const newest = rows.filter((r) => r.state === state)
        const seen = newest.reduce((sum, r) => sum + r.count, 0)
        if (seen <= exactUpTo) {
          counts.push(...newest.map((r) => ({ ...r, estimated: false })))
          continue
        }
        const total = Math.max(seen, yield* estimate("state = $1", [state]))
        counts.push(
          ...newest.map((r) => ({ ...r, count: Math.round((total * r.count) / seen), estimated: true })),
        )
      }
      return counts.sort((a, b) => a.queue.localeCompare(b.queue) || a.state.localeCompare(b.state))
    })
}

/**
 * How far the queue listing and the leader's gauge of jobs per state count exactly: past it a
 * count is an estimate, and a listing costs the same on a table of any size.
 */
export const listingCountBound = 10_000

export const make = (context: StoreContext): StatsStore => ({
  stateCounts: boundedStateCounts(context),
  ...reads(context),
})

const finishedStates = ["completed", "cancelled", "discarded"] as const

/**
 * The jobs that finished in `state` since the start of the minute `$1 - 1` minutes ago, by the
 * database's clock. One state per branch: its index scan then starts at (state, since) instead
 * of walking the finished index of every state for the recent times.
 */
const finishedSince = (jobs: string, state: (typeof finishedStates)[number]) =>
  `SELECT state, ${finishedAt} AS finished_at FROM ${jobs}
   WHERE state = '${state}' AND ${finishedAt} >= date_trunc('minute', now()) - make_interval(mins => $1::integer - 1)`

const reads = (context: StoreContext): Omit<StatsStore, "stateCounts"> => {
  const { jobs, schema, unprepared } = context
  const recent = indexOnly(context, ["enable_seqscan"])
  return {
    // The finish-time expression is the one jobs_finished_idx indexes, so only recent rows are read.
    finishedPerMinute: (minutes) =>
      Effect.map(
        recent<{ minute: Date | string; state: FinishedCount["state"]; count: number | string }>(
          `SELECT date_trunc('minute', finished_at) AS minute, state, count(*)::integer AS count FROM (
             ${finishedStates.map((state) => finishedSince(jobs, state)).join(" UNION ALL ")}
           ) f GROUP BY 1, 2 ORDER BY 1, 2`,
          [minutes],
        ),
        (rows) => rows.map((r) => ({ minute: toDate(r.minute), state: r.state, count: Number(r.count) })),
      ),
    longRunning: (seconds, limit) =>
      Effect.map(
        unprepared<any>(
          `SELECT ${columns} FROM ${jobs}
         WHERE state = 'executing' AND attempted_at < now() - make_interval(secs => $1::float8)
         ORDER BY attempted_at LIMIT $2`,
          [seconds, limit],
        ),
        (rows) => rows.map(recordFromRow),
      ),
    overdue: (seconds) =>
      Effect.map(
        unprepared<{ queue: string; count: number | string; oldest: Date | string }>(
          `SELECT queue, count(*)::integer AS count, min(scheduled_at) AS oldest FROM ${jobs}
         WHERE state = 'available' AND scheduled_at < now() - make_interval(secs => $1::float8)
         GROUP BY queue ORDER BY queue`,
          [seconds],
        ),
        (rows) => rows.map((r) => ({ queue: r.queue, count: Number(r.count), oldestDue: toDate(r.oldest) })),
      ),
    jobsTableHealth: Effect.map(
      unprepared<{
        live: number | string
        dead: number | string
        last_vacuum: Date | string | null
        last_autovacuum: Date | string | null
      }>(
        `SELECT n_live_tup AS live, n_dead_tup AS dead, last_vacuum, last_autovacuum
       FROM pg_stat_user_tables WHERE schemaname = $1 AND relname = 'jobs'`,
        [schema],
      ),
      ([row]) =>
        row === undefined
          ? undefined
          : {
              liveRows: Number(row.live),
              deadRows: Number(row.dead),
              lastVacuum: row.last_vacuum === null ? null : toDate(row.last_vacuum),
              lastAutovacuum: row.last_autovacuum === null ? null : toDate(row.last_autovacuum),
            },
    ),
  }
}
