/**
 * Figures about the jobs table as a whole, for an operator: counts per queue and state, recent
 * throughput, and what `doctor` looks for (long-running and overdue jobs, dead rows).
 */
import type { SqlError } from "@effect/sql/SqlError"
import { Effect } from "effect"
import type { JobRecord, JobState } from "../../JobRecord.js"
import type { StoreContext } from "./context.js"
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
   * Jobs per queue and state, counted exactly for each state that holds at most `exactUpTo`
   * jobs; a state that holds more has the planner's estimates per queue. Reads at most
   * `exactUpTo + 1` index entries per state, however large the table.
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
 * Each state's jobs in the order of the index that holds them, so a sample of the first few is
 * read from that index alone, never from the table as a whole: the claim index (available),
 * the state index (scheduled, executing, retryable), the finished index (the others).
 */
const indexOrder: Readonly<Record<JobState, string>> = {
  available: "queue, (-priority::integer), scheduled_at, id",
  scheduled: "state, queue, id",
  executing: "state, queue, id",
  retryable: "state, queue, id",
  completed: "state, COALESCE(completed_at, cancelled_at, discarded_at)",
  cancelled: "state, COALESCE(completed_at, cancelled_at, discarded_at)",
  discarded: "state, COALESCE(completed_at, cancelled_at, discarded_at)",
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
        Effect.forEach(settings, (setting) => unprepared(`SET LOCAL ${setting} = off`, [])),
        unprepared<A>(text, values),
      ),
    )

/** Counts per queue and state, exact up to a bound per state, estimated past it. */
const boundedStateCounts = (context: StoreContext) => {
  const { jobs, schema, unprepared } = context
  // Walked in index order and cut at the bound: no bitmap of the whole state, no sort.
  const sample = indexOnly(context, ["enable_seqscan", "enable_bitmapscan", "enable_sort"])
  // The states are the closed list above, so they are written into the statement: the planner
  // then matches each branch to its partial index.
  const sampled = Object.entries(indexOrder)
    .map(
      ([state, order]) =>
        `SELECT '${state}' AS state, queue, count(*)::integer AS count FROM (
           SELECT queue FROM ${jobs} WHERE state = '${state}' ORDER BY ${order} LIMIT $1) s GROUP BY queue`,
    )
    .join("\nUNION ALL\n")
  // Queues a state past its bound may hold without the sample showing them.
  const knownQueues = `SELECT name FROM ${schema}.queues
    UNION SELECT jsonb_array_elements_text(queues) FROM ${schema}.nodes`

  const estimate = (state: JobState, queue: string) =>
    Effect.map(
      unprepared<{ "QUERY PLAN": unknown }>(
        `EXPLAIN (FORMAT JSON) SELECT 1 FROM ${jobs} WHERE state = $1 AND queue = $2`,
        [state, queue],
      ),
      ([plan]) => {
        const parsed = plan!["QUERY PLAN"]
        return Math.round(
          Number((typeof parsed === "string" ? JSON.parse(parsed) : parsed)[0].Plan["Plan Rows"]),
        )
      },
    )

  return (exactUpTo: number) =>
    Effect.gen(function* () {
      const rows = yield* sample<{ state: JobState; queue: string; count: number | string }>(sampled, [
        exactUpTo + 1,
      ])
      const counts: Array<StateCount> = []
      const full = new Set<JobState>()
      for (const state of Object.keys(indexOrder) as Array<JobState>) {
        const of = rows.filter((r) => r.state === state)
        if (of.reduce((sum, r) => sum + Number(r.count), 0) > exactUpTo) full.add(state)
        else
          counts.push(...of.map((r) => ({ queue: r.queue, state, count: Number(r.count), estimated: false })))
      }
      if (full.size > 0) {
        const stored = yield* unprepared<{ name: string }>(knownQueues, [])
        const queues = new Set([...rows.map((r) => r.queue), ...stored.map((r) => r.name)])
        for (const state of full) {
          for (const queue of queues) {
            const seen = rows.find((r) => r.state === state && r.queue === queue)
            const guess = yield* estimate(state, queue)
            // The planner answers at least one row for any pair: below two, only a queue the
            // sample showed in this state is taken to have any.
            if (seen === undefined && guess < 2) continue
            counts.push({ queue, state, count: Math.max(guess, Number(seen?.count ?? 0)), estimated: true })
          }
        }
      }
      return counts.sort((a, b) => a.queue.localeCompare(b.queue) || a.state.localeCompare(b.state))
    })
}

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
  `SELECT state, COALESCE(completed_at, cancelled_at, discarded_at) AS finished_at FROM ${jobs}
   WHERE state = '${state}'
     AND COALESCE(completed_at, cancelled_at, discarded_at) >= date_trunc('minute', now()) - make_interval(mins => $1::integer - 1)`

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
