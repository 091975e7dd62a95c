/**
 * Cron schedules: their rows, their checks, and the round that turns due ticks into jobs.
 *
 * Exactly once per tick: a round moves the schedule's `last_tick_at` to now with an UPDATE
 * guarded by the value it read, and inserts the tick's jobs in the same transaction. A second
 * enqueuer (an old leader that has not noticed it was replaced) blocks on the row lock, finds
 * the guard no longer true once the first commits, and inserts nothing.
 */
import type { SqlClient } from "@effect/sql/SqlClient"
import { Clock, Cron, Duration, Effect, Either } from "effect"
import { InvalidSchedule, ScheduleNotFound } from "../../JobError.js"
import type { JobRecord } from "../../JobRecord.js"
import type * as Schedules from "../../Schedules.js"
import {
  checkMeta,
  checkQueueName,
  checkWholeNumber,
  encodeArgs,
  maxInt,
  maxSmallint,
} from "../api/validation.js"
import { retryDatabase, toDatabaseError } from "../store/retryDatabase.js"
import { type Store, toDate } from "../store/store.js"

interface ScheduleRow {
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
  readonly lastTickAt: Date
  readonly lastRunAt: Date | null
  readonly lastJobId: number | null
  readonly createdAt: Date
  readonly updatedAt: Date
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

export const parse = (expression: string, timezone: string | null) =>
  Cron.parse(expression, timezone ?? undefined)

/** The first tick after `after`, or null when the expression cannot be read. */
const nextTick = (row: ScheduleRow, after: number): Date | null => {
  const cron = parse(row.expression, row.timezone)
  return Either.isRight(cron) ? Cron.next(cron.right, new Date(after)) : null
}

export const info = (row: ScheduleRow, now: number): Schedules.ScheduleInfo => ({
  name: row.name,
  expression: row.expression,
  timezone: row.timezone,
  type: row.type,
  args: row.args,
  queue: row.queue,
  missed: row.missed,
  graceMillis: row.graceMillis,
  paused: row.paused,
  lastRunAt: row.lastRunAt,
  lastJobId: row.lastJobId,
  nextRunAt: row.paused ? null : nextTick(row, Math.max(now, row.lastTickAt.getTime())),
  createdAt: row.createdAt,
  updatedAt: row.updatedAt,
})

/**
 * The ticks to enqueue now, oldest first, or null when no tick has passed since `last`.
 * Ticks in (now − grace, now] are on time and always enqueued; older ones since `last` were
 * missed and follow the schedule's policy.
 */
export const dueTicks = (
  cron: Cron.Cron,
  last: number,
  now: number,
  graceMillis: number,
  missed: Schedules.MissedTicks,
): ReadonlyArray<Date> | null => {
  if (Cron.next(cron, new Date(last)).getTime() > now) return null
  const onTime: Array<Date> = []
  for (
    let tick = Cron.next(cron, new Date(Math.max(last, now - graceMillis)));
    tick.getTime() <= now;
    tick = Cron.next(cron, tick)
  ) {
    onTime.push(tick)
  }
  const keep = missed === "skip" ? 0 : missed === "runOnce" ? 1 : missed.backfill
  const missedUntil = now - graceMillis
  const late: Array<Date> = []
  if (keep > 0 && missedUntil > last) {
    // Walked backwards from the end, so a long outage costs `keep` steps, not one per tick.
    // Ticks fall on whole seconds: a tick is at or before missedUntil exactly when it is
    // before the next whole second.
    const ticks = Cron.sequenceReverse(cron, new Date(Math.floor(missedUntil / 1000) * 1000 + 1000))
    for (const tick of ticks) {
      if (tick.getTime() <= last || late.length === keep) break
      late.push(tick)
    }
    late.reverse()
  }
  return [...late, ...onTime]
}

const namePattern = /^[^\p{Cc}]{1,200}$/u

const describeMissed = (missed: Schedules.MissedTicks) =>
  typeof missed === "string" ? missed : `backfill ${missed.backfill}`

export interface CronEnvironment {
  readonly sql: SqlClient
  readonly schema: string
  readonly store: Store
  readonly maxPayloadBytes: number
  /** Told of the jobs a round inserted, once they are committed. */
  readonly onInserted: (records: ReadonlyArray<JobRecord>) => void
}

export const make = (env: CronEnvironment) => {
  const { sql, schema, store } = env
  const table = `${schema}.schedules`

  /** Checks a declaration and turns it into the values stored; nothing is written. */
  const prepare = (schedule: Schedules.CronSchedule) =>
    Effect.gen(function* () {
      const { name, expression, definition, options } = schedule
      const refuse = (reason: string) => new InvalidSchedule({ schedule: String(name), reason })
      if (typeof name !== "string" || !namePattern.test(name) || name.trim() === "") {
        return yield* refuse(
          "its name must be 1 to 200 characters, not all spaces, without control characters",
        )
      }
      const timezone = options.timezone ?? null
      const parsed = parse(expression, timezone)
      if (Either.isLeft(parsed)) {
        return yield* refuse(
          `${JSON.stringify(expression)}${timezone === null ? "" : ` in time zone ${JSON.stringify(timezone)}`}: ${parsed.left.message}`,
        )
      }
      if (definition.resource !== undefined) {
        return yield* refuse(
          `job type "${definition.type}" is aimed at a "${definition.resource}", and a schedule has no resource id to give it`,
        )
      }
      const missed = options.missed ?? "skip"
      if (
        missed !== "skip" &&
        missed !== "runOnce" &&
        !(
          typeof missed === "object" &&
          Number.isInteger(missed.backfill) &&
          missed.backfill >= 1 &&
          missed.backfill <= 1000
        )
      ) {
        return yield* refuse(
          `missed must be "skip", "runOnce" or { backfill: n } with n a whole number from 1 to 1,000, got ${JSON.stringify(missed)}`,
        )
      }
      const graceMillis = Duration.toMillis(options.grace ?? "1 minute")
      if (!(graceMillis >= 1000 && Number.isFinite(graceMillis))) {
        return yield* refuse("grace must be at least 1 second: a round of the scheduler may start that late")
      }
      const queue = options.queue ?? definition.queue
      const priority = options.priority ?? definition.priority
      const maxAttempts = options.maxAttempts ?? definition.maxAttempts
      const checked = yield* Effect.either(
        Effect.all([
          checkQueueName(queue),
          checkWholeNumber("priority", priority, 0, maxSmallint),
          checkWholeNumber("maxAttempts", maxAttempts, 1, maxInt),
          encodeArgs(definition, [schedule.args], env.maxPayloadBytes),
          checkMeta(options.meta),
        ]),
      )
      if (Either.isLeft(checked)) return yield* refuse(checked.left.message)
      const encoded = checked.right[3]
      return {
        name,
        expression,
        timezone,
        type: definition.type,
        queue,
        argsJson: encoded.argsJson[0]!,
        priority,
        maxAttempts,
        meta: options.meta ?? {},
        missed,
        graceMillis,
      }
    })

  const select = `SELECT name, expression, timezone, type, queue, args, priority, max_attempts, meta, missed,
    backfill, grace_ms, paused, last_tick_at, last_run_at, last_job_id, created_at, updated_at FROM ${table}`

  const add = (schedule: Schedules.CronSchedule) =>
    Effect.gen(function* () {
      const s = yield* prepare(schedule)
      const now = yield* Clock.currentTimeMillis
      const at = new Date(now).toISOString()
      const rows = yield* sql
        .unsafe(
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
            at,
          ],
        )
        .pipe(Effect.mapError(toDatabaseError(`storing cron schedule "${s.name}"`)))
      return info(rowFrom(rows[0]), now)
    })

  const found = (name: string, rows: ReadonlyArray<any>, now: number) =>
    rows.length === 0
      ? Effect.fail(new ScheduleNotFound({ schedule: name }))
      : Effect.succeed(info(rowFrom(rows[0]), now))

  const get = (name: string) =>
    Effect.gen(function* () {
      const now = yield* Clock.currentTimeMillis
      const rows = yield* sql
        .unsafe(`${select} WHERE name = $1`, [name])
        .pipe(Effect.mapError(toDatabaseError(`reading cron schedule "${name}"`)))
      return yield* found(name, rows, now)
    })

  const list = Effect.gen(function* () {
    const now = yield* Clock.currentTimeMillis
    const rows = yield* sql
      .unsafe(`${select} ORDER BY name`)
      .pipe(Effect.mapError(toDatabaseError("listing cron schedules")))
    return rows.map((row) => info(rowFrom(row), now))
  })

  const remove = (name: string) =>
    Effect.gen(function* () {
      const rows = yield* sql
        .unsafe(`DELETE FROM ${table} WHERE name = $1 RETURNING name`, [name])
        .pipe(Effect.mapError(toDatabaseError(`removing cron schedule "${name}"`)))
      if (rows.length === 0) return yield* new ScheduleNotFound({ schedule: name })
    })

  // Resuming moves the last tick to now: ticks that passed while paused were not wanted.
  const setPaused = (name: string, paused: boolean) =>
    Effect.gen(function* () {
      const now = yield* Clock.currentTimeMillis
      const rows = yield* sql
        .unsafe(
          `UPDATE ${table} SET paused = $2, updated_at = $3::timestamptz,
             last_tick_at = CASE WHEN paused AND NOT $2 THEN GREATEST(last_tick_at, $3::timestamptz) ELSE last_tick_at END
           WHERE name = $1 RETURNING *`,
          [name, paused, new Date(now).toISOString()],
        )
        .pipe(Effect.mapError(toDatabaseError(`${paused ? "pausing" : "resuming"} cron schedule "${name}"`)))
      return yield* found(name, rows, now)
    })

  /** Enqueues one schedule's due ticks, unless another enqueuer got there first. */
  const enqueue = (row: ScheduleRow, ticks: ReadonlyArray<Date>, now: number) =>
    sql.withTransaction(
      Effect.gen(function* () {
        const claimed = yield* sql.unsafe(
          `UPDATE ${table} SET last_tick_at = $3::timestamptz
           WHERE name = $1 AND last_tick_at = $2::timestamptz AND NOT paused RETURNING name`,
          [row.name, row.lastTickAt.toISOString(), new Date(now).toISOString()],
        )
        if (claimed.length === 0) return []
        const inserted: Array<JobRecord> = []
        const argsJson = JSON.stringify(row.args)
        for (const tick of ticks) {
          const records = yield* store.insert(
            {
              queue: row.queue,
              type: row.type,
              state: "available",
              priority: row.priority,
              maxAttempts: row.maxAttempts,
              meta: { ...row.meta, schedule: row.name, tick: tick.toISOString() },
              scheduledAt: new Date(now),
              args: [row.args],
              argsJson: [argsJson],
            },
            new Date(now),
          )
          inserted.push(...records)
        }
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

  /**
   * One round: every active schedule with a tick passed since its last gets its jobs.
   * Answers the earliest tick still to come, if any, so the caller can wake for it.
   */
  const enqueueDue = Effect.gen(function* () {
    const now = yield* Clock.currentTimeMillis
    const rows = yield* sql.unsafe(`${select} WHERE NOT paused`).pipe(retryDatabase("reading cron schedules"))
    let earliest: number | undefined
    for (const row of rows.map(rowFrom)) {
      const cron = parse(row.expression, row.timezone)
      if (Either.isLeft(cron)) {
        yield* Effect.logWarning(
          `cron schedule "${row.name}" has an expression this node cannot read; skipped`,
        )
        continue
      }
      const upcoming = Cron.next(cron.right, new Date(Math.max(now, row.lastTickAt.getTime()))).getTime()
      if (earliest === undefined || upcoming < earliest) earliest = upcoming
      const ticks = dueTicks(cron.right, row.lastTickAt.getTime(), now, row.graceMillis, row.missed)
      if (ticks === null) continue
      const inserted = yield* enqueue(row, ticks, now).pipe(
        retryDatabase(`enqueuing cron schedule "${row.name}"`),
      )
      if (inserted.length > 0) env.onInserted(inserted)
      const late = ticks.filter((tick) => tick.getTime() <= now - row.graceMillis).length
      if (late > 0 && inserted.length > 0) {
        yield* Effect.logInfo(
          `cron schedule "${row.name}" missed ticks while nothing ran; enqueued ${late} of them (policy: ${describeMissed(row.missed)})`,
        )
      }
    }
    return earliest
  })

  /**
   * The leader's loop: a round, then sleep until the next tick is due or `poll` has passed,
   * whichever is first (schedules added on other nodes are seen within `poll`).
   */
  const runWhile = (isLeader: Effect.Effect<boolean>, poll: Duration.Duration) =>
    Effect.forever(
      Effect.gen(function* () {
        const next = (yield* isLeader) ? yield* enqueueDue : undefined
        const now = yield* Clock.currentTimeMillis
        const pollMillis = Duration.toMillis(poll)
        yield* Effect.sleep(
          Duration.millis(next === undefined ? pollMillis : Math.min(pollMillis, Math.max(0, next - now))),
        )
      }),
    )

  return {
    prepare,
    add,
    get,
    list,
    remove,
    pause: (name: string) => setPaused(name, true),
    resume: (name: string) => setPaused(name, false),
    enqueueDue,
    runWhile,
  }
}
