/**
 * The job_stats table (migration 21): what finished per minute and per hour, with histograms
 * of queue wait and run time, written by the leader from the jobs that finished, and read by
 * charts without touching the jobs.
 */
import type { SqlError } from "@effect/sql/SqlError"
import { Effect } from "effect"
import type { StoreContext } from "./context.js"
import { toDate } from "./records.js"

export type StatsPeriod = "minute" | "hour"

/** Bucket number → how many jobs: four buckets per doubling of milliseconds, 0 below 1 ms. */
export type Histogram = Readonly<Record<string, number>>

/** Bucket `b` ≥ 1 holds the durations in [2^((b − 1)/4), 2^(b/4)) ms; bucket 0 those under 1 ms. */
export const bucketsPerDoubling = 4

export interface StatsRow {
  readonly period: StatsPeriod
  readonly start: Date
  readonly completed: number
  /** Discarded: out of attempts, or discarded by the handler. */
  readonly failed: number
  readonly cancelled: number
  /** Queue wait of the last attempt (attempted − due), of completed and failed jobs. */
  readonly wait: Histogram
  /** Run time of the last attempt (finished − attempted), of completed and failed jobs. */
  readonly run: Histogram
}

export interface JobStatsStore {
  /** The start of the newest stored row of `period`, or null. */
  readonly lastStats: (period: StatsPeriod) => Effect.Effect<Date | null, SqlError>
  /**
   * Stores a row for every minute in [from, to) (whole minutes) from the jobs that finished in
   * it, a row of zeros where none did; a minute stored already is stored again.
   */
  readonly aggregateMinutes: (from: Date, to: Date) => Effect.Effect<void, SqlError>
  /** Stores a row for every hour in [from, to) that has minute rows: their sums. */
  readonly rollUpHours: (from: Date, to: Date) => Effect.Effect<void, SqlError>
  /** When the first job that finished at `from` or later finished, or null when none did. */
  readonly firstFinishedSince: (from: Date) => Effect.Effect<Date | null, SqlError>
  /** Deletes the rows of `period` that start before `before`. */
  readonly pruneStats: (period: StatsPeriod, before: Date) => Effect.Effect<void, SqlError>
  /** The rows of `period` that start at `from` or later, oldest first. */
  readonly readStats: (period: StatsPeriod, from: Date) => Effect.Effect<ReadonlyArray<StatsRow>, SqlError>
}

const finishedAt = "COALESCE(completed_at, cancelled_at, discarded_at)"

/** A duration in ms as its bucket number, in SQL. */
const bucketOf = (ms: string) =>
  `CASE WHEN ${ms} < 1 THEN 0 ELSE floor(ln(${ms}) / ln(2) * ${bucketsPerDoubling})::integer + 1 END`

/** The histogram of `column` per `period` start, from the rows of `source`, as jsonb. */
const histogramOf = (source: string, key: string, column: string) =>
  `SELECT start_at, jsonb_object_agg(bucket, n) AS h FROM (
     SELECT ${key} AS start_at, e.key AS bucket, sum(e.value::integer)::integer AS n
     FROM ${source}, jsonb_each_text(${source}.${column}) e GROUP BY 1, 2) x GROUP BY start_at`

const upsert = (table: string) =>
  `INSERT INTO ${table} (period, start_at, completed, failed, cancelled, wait, run)`

const onConflict = `ON CONFLICT (period, start_at) DO UPDATE SET completed = EXCLUDED.completed,
  failed = EXCLUDED.failed, cancelled = EXCLUDED.cancelled, wait = EXCLUDED.wait, run = EXCLUDED.run`

const histogram = (value: unknown): Histogram => {
  const parsed = typeof value === "string" ? (JSON.parse(value) as unknown) : value
  return typeof parsed === "object" && parsed !== null ? (parsed as Histogram) : {}
}

export const make = ({ sql, schema, jobs }: StoreContext): JobStatsStore => {
  const table = `${schema}.job_stats`
  // The finish-time expression and states are those of jobs_finished_idx: only the minutes
  // asked for are read. Wait and run time are of the last attempt.
  const aggregateText = `WITH f AS (
      SELECT date_trunc('minute', ${finishedAt}) AS start_at, state,
        CASE WHEN state <> 'cancelled' AND attempted_at IS NOT NULL
          THEN greatest(0, extract(epoch FROM attempted_at - scheduled_at) * 1000) END AS wait_ms,
        CASE WHEN state <> 'cancelled' AND attempted_at IS NOT NULL
          THEN greatest(0, extract(epoch FROM ${finishedAt} - attempted_at) * 1000) END AS run_ms
      FROM ${jobs}
      WHERE state IN ('completed', 'cancelled', 'discarded')
        AND ${finishedAt} >= $1::timestamptz AND ${finishedAt} < $2::timestamptz
    ), counts AS (
      SELECT start_at, count(*) FILTER (WHERE state = 'completed')::integer AS completed,
        count(*) FILTER (WHERE state = 'discarded')::integer AS failed,
        count(*) FILTER (WHERE state = 'cancelled')::integer AS cancelled
      FROM f GROUP BY start_at
    ), wait AS (
      SELECT start_at, jsonb_object_agg(bucket, n) AS h FROM (
        SELECT start_at, ${bucketOf("wait_ms")} AS bucket, count(*)::integer AS n
        FROM f WHERE wait_ms IS NOT NULL GROUP BY 1, 2) x GROUP BY start_at
    ), run AS (
      SELECT start_at, jsonb_object_agg(bucket, n) AS h FROM (
        SELECT start_at, ${bucketOf("run_ms")} AS bucket, count(*)::integer AS n
        FROM f WHERE run_ms IS NOT NULL GROUP BY 1, 2) x GROUP BY start_at
    )
    ${upsert(table)}
    SELECT 'minute', m.start_at, COALESCE(c.completed, 0), COALESCE(c.failed, 0), COALESCE(c.cancelled, 0),
      COALESCE(wait.h, '{}'::jsonb), COALESCE(run.h, '{}'::jsonb)
    FROM generate_series($1::timestamptz, $2::timestamptz - interval '1 minute', interval '1 minute') AS m(start_at)
    LEFT JOIN counts c USING (start_at) LEFT JOIN wait USING (start_at) LEFT JOIN run USING (start_at)
    ${onConflict}`
  const hourKey = "date_trunc('hour', m.start_at)"
  const rollUpText = `WITH m AS (
      SELECT * FROM ${table} WHERE period = 'minute' AND start_at >= $1::timestamptz AND start_at < $2::timestamptz
    ), totals AS (
      SELECT ${hourKey} AS start_at, sum(completed)::integer AS completed, sum(failed)::integer AS failed,
        sum(cancelled)::integer AS cancelled
      FROM m GROUP BY 1
    ), wait AS (${histogramOf("m", hourKey, "wait")}), run AS (${histogramOf("m", hourKey, "run")})
    ${upsert(table)}
    SELECT 'hour', t.start_at, t.completed, t.failed, t.cancelled,
      COALESCE(wait.h, '{}'::jsonb), COALESCE(run.h, '{}'::jsonb)
    FROM totals t LEFT JOIN wait USING (start_at) LEFT JOIN run USING (start_at)
    ${onConflict}`
  return {
    lastStats: (period) =>
      Effect.map(
        sql.unsafe<{ last: Date | string | null }>(
          `SELECT max(start_at) AS last FROM ${table} WHERE period = $1`,
          [period],
        ),
        (rows) => (rows[0]?.last == null ? null : toDate(rows[0].last)),
      ),
    // The planner, misjudging how many jobs finish in a minute, would read the whole table:
    // the finish-time index is always the way, as in prune_jobs (migration 11).
    aggregateMinutes: (from, to) =>
      sql.withTransaction(
        Effect.zipRight(
          sql.unsafe(`SET LOCAL enable_seqscan = off`),
          Effect.asVoid(sql.unsafe(aggregateText, [from.toISOString(), to.toISOString()])),
        ),
      ),
    rollUpHours: (from, to) => Effect.asVoid(sql.unsafe(rollUpText, [from.toISOString(), to.toISOString()])),
    // One look per state down the finish-time index.
    firstFinishedSince: (from) =>
      Effect.map(
        sql.unsafe<{ first: Date | string | null }>(
          `SELECT least(${(["completed", "cancelled", "discarded"] as const)
            .map(
              (state) =>
                `(SELECT min(${finishedAt}) FROM ${jobs} WHERE state = '${state}' AND ${finishedAt} >= $1::timestamptz)`,
            )
            .join(", ")}) AS first`,
          [from.toISOString()],
        ),
        (rows) => (rows[0]?.first == null ? null : toDate(rows[0].first)),
      ),
    pruneStats: (period, before) =>
      Effect.asVoid(
        sql.unsafe(`DELETE FROM ${table} WHERE period = $1 AND start_at < $2::timestamptz`, [
          period,
          before.toISOString(),
        ]),
      ),
    readStats: (period, from) =>
      Effect.map(
        sql.unsafe<{
          start_at: Date | string
          completed: number | string
          failed: number | string
          cancelled: number | string
          wait: unknown
          run: unknown
        }>(
          `SELECT start_at, completed, failed, cancelled, wait, run FROM ${table}
           WHERE period = $1 AND start_at >= $2::timestamptz ORDER BY start_at`,
          [period, from.toISOString()],
        ),
        (rows) =>
          rows.map(
            (row): StatsRow => ({
              period,
              start: toDate(row.start_at),
              completed: Number(row.completed),
              failed: Number(row.failed),
              cancelled: Number(row.cancelled),
              wait: histogram(row.wait),
              run: histogram(row.run),
            }),
          ),
      ),
  }
}
