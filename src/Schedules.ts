/**
 * Cron schedules: a job inserted at every tick of a cron expression, exactly once per tick
 * however many nodes run. Declare them in `Jobs.layer({ schedules })` or add them at run time
 * through the `Schedules` service; either way they are stored, so pauses and the last tick
 * survive restarts.
 */
import { Context, type Duration, type Effect } from "effect"
import type * as Job from "./Job.js"
import type { DatabaseError, InvalidSchedule, ScheduleNotFound } from "./JobError.js"
import type { JobRecord } from "./JobRecord.js"

/**
 * What to do with ticks that passed while no node was enqueuing (all stopped, say), that
 * is ticks older than the schedule's `grace`:
 * - `"skip"`: drop them; the schedule goes on from the next tick;
 * - `"runOnce"`: enqueue one job for the newest of them;
 * - `{ backfill: n }`: enqueue one job for each of the newest `n` of them, oldest first.
 */
export type MissedTicks = "skip" | "runOnce" | { readonly backfill: number }

export interface CronOptions {
  /** An IANA time zone (`"Europe/Paris"`) the expression is read in. Defaults to UTC. */
  readonly timezone?: string | undefined
  /** Defaults to `"skip"`. */
  readonly missed?: MissedTicks | undefined
  /**
   * How late a tick may be enqueued and still count as on time; older ticks follow `missed`.
   * Defaults to 1 minute.
   */
  readonly grace?: Duration.DurationInput | undefined
  /** Defaults to the definition's queue. */
  readonly queue?: string | undefined
  /** Defaults to the definition's priority. */
  readonly priority?: number | undefined
  /** Defaults to the definition's `maxAttempts`. */
  readonly maxAttempts?: number | undefined
  /** Stored with every job, beside the `schedule` and `tick` the scheduler adds. */
  readonly meta?: Record<string, unknown> | undefined
}

/** A cron schedule, ready for `Jobs.layer({ schedules })` or `Schedules.add`. */
export interface CronSchedule {
  readonly name: string
  readonly expression: string
  readonly definition: Job.Definition
  readonly args: unknown
  readonly options: CronOptions
}

/**
 * What a definition must be to be scheduled: not aimed at a resource, since a tick has no
 * resource id to give its job. The message is the compile error a resource definition meets.
 */
export type Schedulable<D> =
  Job.TargetsResource<D> extends true
    ? "a job type aimed at a resource cannot be scheduled: a tick has no resource id to give it"
    : unknown

/**
 * A job of `definition` with `args`, inserted at every tick of `expression` (five fields,
 * or six with seconds first: `"0 3 * * *"` is 03:00 every day). `name` identifies the
 * schedule: declaring it again replaces its expression, args and options but keeps its
 * pause and last tick. A definition aimed at a resource does not compile (nor is it stored:
 * `InvalidSchedule`).
 */
export const cron = <D extends Job.Definition>(
  name: string,
  expression: string,
  definition: D & Schedulable<D>,
  args: Job.Args<D>,
  options: CronOptions = {},
): CronSchedule => ({ name, expression, definition, args, options })

export interface ScheduleInfo {
  readonly name: string
  readonly expression: string
  readonly timezone: string | null
  /** The job type it inserts, with these encoded args, into this queue. */
  readonly type: string
  readonly args: unknown
  readonly queue: string
  readonly missed: MissedTicks
  readonly graceMillis: number
  readonly paused: boolean
  /** The tick of the last job it inserted, and that job's id. */
  readonly lastRunAt: Date | null
  readonly lastJobId: number | null
  /** The next tick, or null while paused. */
  readonly nextRunAt: Date | null
  readonly createdAt: Date
  readonly updatedAt: Date
}

export class Schedules extends Context.Tag("effect-jobs/Schedules")<
  Schedules,
  {
    /**
     * Stores the schedule, or replaces the one with its name (keeping its pause and last
     * tick). A new schedule's first tick is the first one after now.
     */
    readonly add: (schedule: CronSchedule) => Effect.Effect<ScheduleInfo, InvalidSchedule | DatabaseError>
    /** Deletes the schedule; jobs it already inserted stay. */
    readonly remove: (name: string) => Effect.Effect<void, ScheduleNotFound | DatabaseError>
    /** Stops inserting jobs, on every node, until `resume`. */
    readonly pause: (name: string) => Effect.Effect<ScheduleInfo, ScheduleNotFound | DatabaseError>
    /** Starts again from the next tick: ticks passed while paused are not enqueued. */
    readonly resume: (name: string) => Effect.Effect<ScheduleInfo, ScheduleNotFound | DatabaseError>
    /**
     * Inserts the schedule's job now, outside its ticks, paused or not: its type, args, queue,
     * priority and `maxAttempts`, with its meta plus `schedule` (its name) and `manual: true`.
     * The schedule's last and next run stay as they were. Answers the inserted job.
     */
    readonly runNow: (name: string) => Effect.Effect<JobRecord, ScheduleNotFound | DatabaseError>
    readonly get: (name: string) => Effect.Effect<ScheduleInfo, ScheduleNotFound | DatabaseError>
    /** All stored schedules, by name. */
    readonly list: Effect.Effect<ReadonlyArray<ScheduleInfo>, DatabaseError>
  }
>() {}
