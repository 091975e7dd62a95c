/**
 * Cron schedules: their checks, and the round that turns due ticks into jobs. The store's
 * `enqueueTicks` makes each tick enqueue exactly once, however many enqueuers race.
 */
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
  minSmallint,
} from "../api/validation.js"
import { retryDatabase, toDatabaseError } from "../store/retryDatabase.js"
import type { NewSchedule, ScheduleRow, Store } from "../store/store.js"

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

const validMissed = (missed: unknown): missed is Schedules.MissedTicks =>
  missed === "skip" ||
  missed === "runOnce" ||
  (typeof missed === "object" &&
    missed !== null &&
    Number.isInteger((missed as { backfill?: unknown }).backfill) &&
    (missed as { backfill: number }).backfill >= 1 &&
    (missed as { backfill: number }).backfill <= 1000)

/** Checks a declaration and turns it into the values stored; nothing is written. */
export const prepare = (
  schedule: Schedules.CronSchedule,
  maxPayloadBytes: number,
): Effect.Effect<NewSchedule, InvalidSchedule> =>
  Effect.gen(function* () {
    const { name, expression, definition, options } = schedule
    const refuse = (reason: string) => new InvalidSchedule({ schedule: String(name), reason })
    if (typeof name !== "string" || !namePattern.test(name) || name.trim() === "") {
      return yield* refuse("its name must be 1 to 200 characters, not all spaces, without control characters")
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
    if (!validMissed(missed)) {
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
        checkWholeNumber("priority", priority, minSmallint, maxSmallint),
        checkWholeNumber("maxAttempts", maxAttempts, 1, maxInt),
        encodeArgs(definition, [schedule.args], maxPayloadBytes),
        checkMeta(options.meta),
      ]),
    )
    if (Either.isLeft(checked)) return yield* refuse(checked.left.message)
    return {
      name,
      expression,
      timezone,
      type: definition.type,
      queue,
      argsJson: checked.right[3].argsJson[0]!,
      priority,
      maxAttempts,
      meta: options.meta ?? {},
      missed,
      graceMillis,
    }
  })

export interface CronEnvironment {
  readonly store: Store
  readonly maxPayloadBytes: number
  /** Told of the jobs a round inserted, once they are committed. */
  readonly onInserted: (records: ReadonlyArray<JobRecord>) => void
}

/** The schedules as `Schedules` shows them: stored, read, removed, paused and resumed. */
const manage = ({ store, maxPayloadBytes, onInserted }: CronEnvironment) => {
  const found = (name: string, row: ScheduleRow | undefined, now: number) =>
    row === undefined ? Effect.fail(new ScheduleNotFound({ schedule: name })) : Effect.succeed(info(row, now))

  const add = (schedule: Schedules.CronSchedule) =>
    Effect.gen(function* () {
      const s = yield* prepare(schedule, maxPayloadBytes)
      const now = yield* Clock.currentTimeMillis
      const row = yield* store
        .upsertSchedule(s, new Date(now))
        .pipe(Effect.mapError(toDatabaseError(`storing cron schedule "${s.name}"`)))
      return info(row, now)
    })

  const get = (name: string) =>
    Effect.gen(function* () {
      const now = yield* Clock.currentTimeMillis
      const row = yield* store
        .schedule(name)
        .pipe(Effect.mapError(toDatabaseError(`reading cron schedule "${name}"`)))
      return yield* found(name, row, now)
    })

  const list = Effect.gen(function* () {
    const now = yield* Clock.currentTimeMillis
    const rows = yield* store.schedules.pipe(Effect.mapError(toDatabaseError("listing cron schedules")))
    return rows.map((row) => info(row, now))
  })

  const remove = (name: string) =>
    Effect.gen(function* () {
      const removed = yield* store
        .removeSchedule(name)
        .pipe(Effect.mapError(toDatabaseError(`removing cron schedule "${name}"`)))
      if (!removed) return yield* new ScheduleNotFound({ schedule: name })
    })

  const setPaused = (name: string, paused: boolean) =>
    Effect.gen(function* () {
      const now = yield* Clock.currentTimeMillis
      const row = yield* store
        .setSchedulePaused(name, paused, new Date(now))
        .pipe(Effect.mapError(toDatabaseError(`${paused ? "pausing" : "resuming"} cron schedule "${name}"`)))
      return yield* found(name, row, now)
    })

  const runNow = (name: string) =>
    Effect.gen(function* () {
      const now = yield* Clock.currentTimeMillis
      const record = yield* store
        .runScheduleNow(name, new Date(now))
        .pipe(Effect.mapError(toDatabaseError(`running cron schedule "${name}" now`)))
      if (record === undefined) return yield* new ScheduleNotFound({ schedule: name })
      onInserted([record])
      return record
    })

  return {
    prepare: (schedule: Schedules.CronSchedule) => prepare(schedule, maxPayloadBytes),
    add,
    runNow,
    get,
    list,
    remove,
    pause: (name: string) => setPaused(name, true),
    resume: (name: string) => setPaused(name, false),
  }
}

/**
 * One schedule's part of a round: its due ticks enqueued, if any. Answers its next tick, or
 * undefined when its expression cannot be read here.
 */
const enqueueSchedule = (env: CronEnvironment, row: ScheduleRow, now: number) =>
  Effect.gen(function* () {
    const cron = parse(row.expression, row.timezone)
    if (Either.isLeft(cron)) {
      yield* Effect.logWarning(`cron schedule "${row.name}" has an expression this node cannot read; skipped`)
      return undefined
    }
    const upcoming = Cron.next(cron.right, new Date(Math.max(now, row.lastTickAt.getTime()))).getTime()
    const ticks = dueTicks(cron.right, row.lastTickAt.getTime(), now, row.graceMillis, row.missed)
    if (ticks === null) return upcoming
    const inserted = yield* env.store
      .enqueueTicks(row, ticks, new Date(now))
      .pipe(retryDatabase(`enqueuing cron schedule "${row.name}"`))
    if (inserted.length > 0) env.onInserted(inserted)
    const late = ticks.filter((tick) => tick.getTime() <= now - row.graceMillis).length
    if (late > 0 && inserted.length > 0) {
      yield* Effect.logInfo(
        `cron schedule "${row.name}" missed ticks while nothing ran; enqueued ${late} of them (policy: ${describeMissed(row.missed)})`,
      )
    }
    return upcoming
  })

export const make = (env: CronEnvironment) => {
  /**
   * One round: every active schedule with a tick passed since its last gets its jobs.
   * Answers the earliest tick still to come, if any, so the caller can wake for it.
   */
  const enqueueDue = Effect.gen(function* () {
    const now = yield* Clock.currentTimeMillis
    const rows = yield* env.store.activeSchedules.pipe(retryDatabase("reading cron schedules"))
    let earliest: number | undefined
    for (const row of rows) {
      const upcoming = yield* enqueueSchedule(env, row, now)
      if (upcoming !== undefined && (earliest === undefined || upcoming < earliest)) earliest = upcoming
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

  return { ...manage(env), enqueueDue, runWhile }
}

/**
 * Schedules declared by a node's options: every one checked first (names unique, expression,
 * args), then stored, so one bad schedule stores none. A schedule's name is its identity.
 */
export const declare = (cron: ReturnType<typeof make>, schedules: ReadonlyArray<Schedules.CronSchedule>) =>
  Effect.gen(function* () {
    const names = new Set<string>()
    for (const schedule of schedules) {
      if (names.has(schedule.name)) {
        return yield* new InvalidSchedule({
          schedule: schedule.name,
          reason: "two schedules are declared with this name",
        })
      }
      names.add(schedule.name)
      yield* cron.prepare(schedule)
    }
    for (const schedule of schedules) yield* cron.add(schedule)
  })
