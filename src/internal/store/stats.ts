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
  /** Jobs per queue and state; a full count, not an estimate. */
  readonly stateCounts: Effect.Effect<ReadonlyArray<StateCount>, SqlError>
  /** Jobs finished in each of the last `minutes` minutes (by the database's clock), by state. */
  readonly finishedPerMinute: (minutes: number) => Effect.Effect<ReadonlyArray<FinishedCount>, SqlError>
  /** Jobs executing for longer than `seconds`, longest first, at most `limit`. */
  readonly longRunning: (seconds: number, limit: number) => Effect.Effect<ReadonlyArray<JobRecord>, SqlError>
  /** Per queue, the available jobs that have been due for longer than `seconds`. */
  readonly overdue: (seconds: number) => Effect.Effect<ReadonlyArray<OverdueQueue>, SqlError>
  /** The server's count of live and dead rows of the jobs table; undefined before it has any. */
  readonly jobsTableHealth: Effect.Effect<TableHealth | undefined, SqlError>
}

export const make = ({ jobs, schema, unprepared }: StoreContext): StatsStore => ({
  stateCounts: Effect.map(
    unprepared<{ queue: string; state: JobState; count: number | string }>(
      `SELECT queue, state, count(*)::integer AS count FROM ${jobs} GROUP BY queue, state ORDER BY queue, state`,
      [],
    ),
    (rows) => rows.map((r) => ({ queue: r.queue, state: r.state, count: Number(r.count) })),
  ),
  // The finish-time expression is the one jobs_finished_idx indexes, so only recent rows are read.
  finishedPerMinute: (minutes) =>
    Effect.map(
      unprepared<{ minute: Date | string; state: FinishedCount["state"]; count: number | string }>(
        `SELECT date_trunc('minute', COALESCE(completed_at, cancelled_at, discarded_at)) AS minute, state,
           count(*)::integer AS count
         FROM ${jobs}
         WHERE state IN ('completed', 'cancelled', 'discarded')
           AND COALESCE(completed_at, cancelled_at, discarded_at) >= date_trunc('minute', now()) - make_interval(mins => $1::integer - 1)
         GROUP BY 1, 2 ORDER BY 1, 2`,
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
})
