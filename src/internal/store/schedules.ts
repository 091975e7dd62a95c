/**
 * The schedules table: cron schedules as stored, and the enqueuing of their ticks.
 *
 * Exactly once per tick: `enqueueTicks` moves the schedule's `last_tick_at` to now with an
 * UPDATE guarded by the value the caller read, and inserts the tick's jobs in the same
 * transaction. A second enqueuer (an old leader that has not noticed it was replaced) blocks
 * on the row lock, finds the guard no longer true once the first commits, and inserts nothing.
 */
import type { SqlError } from "@effect/sql/SqlError"
import { Effect } from "effect"
import type { JobRecord } from "../../JobRecord.js"
import type * as Schedules from "../../Schedules.js"
import type { StoreContext } from "./context.js"
import type { JobsStore } from "./jobs.js"
import { toDate } from "./records.js"

/** A schedule as stored. */
export interface ScheduleRow {
  readonly name: string
  readonly expression: string
  readonly timezone: string | null
  readonly type: string
  readonly queue: string
  readonly args: unknown
  readonly priority: number
  readonly maxAttempts: number
  readonly meta: Record<string, unknown>
  readonly missed: Schedules.MissedTicks
  readonly graceMillis: number
  readonly paused: boolean
  /** The last tick enqueued, or the time the schedule was created or resumed. */
  readonly lastTickAt: Date
  readonly lastRunAt: Date | null
  readonly lastJobId: number | null
  readonly createdAt: Date
  readonly updatedAt: Date
}

/** A checked schedule, ready to store. */
export interface NewSchedule {
  readonly name: string
  readonly expression: string
  readonly timezone: string | null
  readonly type: string
  readonly queue: string
  /** The encoded args, as JSON. */
  readonly argsJson: string
  readonly priority: number
  readonly maxAttempts: number
  readonly meta: Record<string, unknown>
  readonly missed: Schedules.MissedTicks
  readonly graceMillis: number
}

export interface SchedulesStore {
  /**
   * Stores a schedule, or replaces the declaration of the one of that name; a replaced one
   * keeps its last tick, its pause and its creation time.
   */
  readonly upsertSchedule: (schedule: NewSchedule, at: Date) => Effect.Effect<ScheduleRow, SqlError>
  readonly schedule: (name: string) => Effect.Effect<ScheduleRow | undefined, SqlError>
  /** Every schedule, by name. */
  readonly schedules: Effect.Effect<ReadonlyArray<ScheduleRow>, SqlError>
  /** The schedules that are not paused. */
  readonly activeSchedules: Effect.Effect<ReadonlyArray<ScheduleRow>, SqlError>
  /** True when there was a schedule of that name. */
  readonly removeSchedule: (name: string) => Effect.Effect<boolean, SqlError>
  /**
   * Pauses or resumes a schedule; undefined when there is none of that name. Resuming moves
   * the last tick to `at`: ticks that passed while paused were not wanted.
   */
  readonly setSchedulePaused: (
    name: string,
    paused: boolean,
    at: Date,
  ) => Effect.Effect<ScheduleRow | undefined, SqlError>
  /**
   * Inserts one job per tick of `ticks` for the schedule as read in `row`, unless its last tick
   * moved since (another enqueuer got there first) or it was paused: then nothing.
   */
  readonly enqueueTicks: (
    row: ScheduleRow,
    ticks: ReadonlyArray<Date>,
    now: Date,
  ) => Effect.Effect<ReadonlyArray<JobRecord>, SqlError>
  /**
   * Inserts one job of the schedule named `name`, available now, outside its ticks (paused or
   * not), with `manual: true` in its meta; its last tick and last run stay. Undefined when
   * there is no schedule of that name.
   */
  readonly runScheduleNow: (name: string, now: Date) => Effect.Effect<JobRecord | undefined, SqlError>
}

const rowFrom = (r: any): ScheduleRow => ({
  name: r.name,
  expression: r.expression,
  timezone: r.timezone ?? null,
  type: r.type,
  queue: r.queue,
  args: r.args,
  priority: Number(r.priority),
  maxAttempts: Number(r.max_attempts),
  meta: r.meta ?? {},
  missed: r.missed === "backfill" ? { backfill: Number(r.backfill) } : r.missed,
  graceMillis: Number(r.grace_ms),
  paused: Boolean(r.paused),
  lastTickAt: toDate(r.last_tick_at),
  lastRunAt: r.last_run_at === null ? null : toDate(r.last_run_at),
  lastJobId: r.last_job_id === null ? null : Number(r.last_job_id),
  createdAt: toDate(r.created_at),
  updatedAt: toDate(r.updated_at),
})

const first = (rows: ReadonlyArray<unknown>) => (rows.length === 0 ? undefined : rowFrom(rows[0]))

export const make = ({ sql, schema }: StoreContext, insert: JobsStore["insert"]): SchedulesStore => {
  const table = `${schema}.schedules`
  const select = `SELECT name, expression, timezone, type, queue, args, priority, max_attempts, meta, missed,
    backfill, grace_ms, paused, last_tick_at, last_run_at, last_job_id, created_at, updated_at FROM ${table}`

  const upsertSchedule = (s: NewSchedule, at: Date) =>
    Effect.map(
      sql.unsafe(
        `INSERT INTO ${table} (name, expression, timezone, type, queue, args, priority, max_attempts, meta,
           missed, backfill, grace_ms, last_tick_at, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7, $8, $9::jsonb, $10, $11, $12, $13::timestamptz, $13::timestamptz,
           $13::timestamptz)
         ON CONFLICT (name) DO UPDATE SET expression = EXCLUDED.expression, timezone = EXCLUDED.timezone,
           type = EXCLUDED.type, queue = EXCLUDED.queue, args = EXCLUDED.args, priority = EXCLUDED.priority,
           max_attempts = EXCLUDED.max_attempts, meta = EXCLUDED.meta, missed = EXCLUDED.missed,
           backfill = EXCLUDED.backfill, grace_ms = EXCLUDED.grace_ms, updated_at = EXCLUDED.updated_at
         RETURNING *`,
        [
          s.name,
          s.expression,
          s.timezone,
          s.type,
          s.queue,
          s.argsJson,
          s.priority,
          s.maxAttempts,
          JSON.stringify(s.meta),
          typeof s.missed === "string" ? s.missed : "backfill",
          typeof s.missed === "string" ? 0 : s.missed.backfill,
          s.graceMillis,
          at.toISOString(),
        ],
      ),
      (rows) => rowFrom(rows[0]),
    )

  const setSchedulePaused = (name: string, paused: boolean, at: Date) =>
    Effect.map(
      sql.unsafe(
        `UPDATE ${table} SET paused = $2, updated_at = $3::timestamptz,
           last_tick_at = CASE WHEN paused AND NOT $2 THEN GREATEST(last_tick_at, $3::timestamptz) ELSE last_tick_at END
         WHERE name = $1 RETURNING *`,
        [name, paused, at.toISOString()],
      ),
      first,
    )

  /** One job of the schedule, available now, with `meta` over the schedule's own. */
  const insertOne = (row: ScheduleRow, meta: Record<string, unknown>, now: Date) =>
    insert(
      {
        queue: row.queue,
        type: row.type,
        state: "available",
        priority: row.priority,
        maxAttempts: row.maxAttempts,
        meta: { ...row.meta, schedule: row.name, ...meta },
        scheduledAt: now,
        args: [row.args],
        argsJson: [JSON.stringify(row.args)],
      },
      now,
    )

  const insertTicks = (row: ScheduleRow, ticks: ReadonlyArray<Date>, now: Date) =>
    Effect.gen(function* () {
      const inserted: Array<JobRecord> = []
      for (const tick of ticks) inserted.push(...(yield* insertOne(row, { tick: tick.toISOString() }, now)))
      return inserted
    })

  const runScheduleNow = (name: string, now: Date) =>
    Effect.gen(function* () {
      const row = first(yield* sql.unsafe(`${select} WHERE name = $1`, [name]))
      if (row === undefined) return undefined
      const [record] = yield* insertOne(row, { manual: true }, now)
      return record
    })

  const enqueueTicks = (row: ScheduleRow, ticks: ReadonlyArray<Date>, now: Date) =>
    sql.withTransaction(
      Effect.gen(function* () {
        const claimed = yield* sql.unsafe(
          `UPDATE ${table} SET last_tick_at = $3::timestamptz
           WHERE name = $1 AND last_tick_at = $2::timestamptz AND NOT paused RETURNING name`,
          [row.name, row.lastTickAt.toISOString(), now.toISOString()],
        )
        if (claimed.length === 0) return []
        const inserted = yield* insertTicks(row, ticks, now)
        const last = inserted.at(-1)
        if (last !== undefined) {
          yield* sql.unsafe(
            `UPDATE ${table} SET last_run_at = $2::timestamptz, last_job_id = $3 WHERE name = $1`,
            [row.name, ticks.at(-1)!.toISOString(), last.id],
          )
        }
        return inserted
      }),
    )

  return {
    upsertSchedule,
    schedule: (name) => Effect.map(sql.unsafe(`${select} WHERE name = $1`, [name]), first),
    schedules: Effect.map(sql.unsafe(`${select} ORDER BY name`), (rows) => rows.map(rowFrom)),
    activeSchedules: Effect.map(sql.unsafe(`${select} WHERE NOT paused`), (rows) => rows.map(rowFrom)),
    removeSchedule: (name) =>
      Effect.map(
        sql.unsafe(`DELETE FROM ${table} WHERE name = $1 RETURNING name`, [name]),
        (rows) => rows.length > 0,
      ),
    setSchedulePaused,
    enqueueTicks,
    runScheduleNow,
  }
}
