/**
 * Stateful recurring tasks: code that runs on an interval or a cron expression and hands a
 * state from each run to the next. The state is stored, so it carries across restarts and
 * from node to node. Register tasks with `Jobs.layer({ tasks })` or the `Tasks` service.
 */
import type { Duration, Effect, Schema } from "effect"
import type * as Job from "./Job.js"

/** What every task gives, whichever way it is scheduled. */
export interface TaskOptionsBase<State, StateEncoded extends Job.Json, E, R> {
  /** The task's stable identity: its state and history are stored under it. */
  readonly id: string
  /** What listings show; may change between deployments. Defaults to the id. */
  readonly name?: string | undefined
  /** The Schema of the state; it is stored encoded, as JSON. */
  readonly state: Schema.Schema<State, StateEncoded>
  /** The state of the first run, and the state after a defect. */
  readonly initial: NoInfer<State>
  /**
   * One run: takes the state the previous run returned and returns the next. A failure keeps
   * the previous state and counts as a failure; a defect resets the task to `initial` and
   * its counters to zero.
   */
  readonly run: (state: NoInfer<State>) => Effect.Effect<NoInfer<State>, E, R>
  /** Leave the task out of `Tasks.stats()` unless asked for. Defaults to false. */
  readonly hidden?: boolean | undefined
}

/** A task run on an interval: `every`, and no `cron`. */
export interface EveryOptions {
  /**
   * Run every this long, counted from the end of the previous run (the first run comes one
   * interval after the task is first registered), even when shorter than `pollInterval`: the
   * task manager wakes when a task is due. Zero means run once, right away.
   */
  readonly every: Duration.DurationInput
  readonly cron?: undefined
  readonly timezone?: undefined
}

/** A task run on a cron expression: `cron`, and no `every`. */
export interface CronOptions {
  /** Run at each tick of this cron expression. */
  readonly cron: string
  /** The IANA time zone `cron` is read in. Defaults to UTC. */
  readonly timezone?: string | undefined
  readonly every?: undefined
}

/**
 * A task's options: `every` or `cron`, exactly one of them (giving both or neither does not
 * compile; an untyped caller that does gets `InvalidTask` at registration).
 */
export type TaskOptions<State, StateEncoded extends Job.Json, E, R> = TaskOptionsBase<
  State,
  StateEncoded,
  E,
  R
> &
  (EveryOptions | CronOptions)

export interface Task<State = any, E = any, R = any> {
  readonly id: string
  readonly name: string
  readonly every: Duration.DurationInput | undefined
  readonly cron: string | undefined
  readonly timezone: string | undefined
  readonly stateSchema: Schema.Schema<State, any>
  readonly initial: State
  readonly run: (state: State) => Effect.Effect<State, E, R>
  readonly hidden: boolean
}

export const make = <State, StateEncoded extends Job.Json, E = never, R = never>(
  options: TaskOptions<State, StateEncoded, E, R>,
): Task<State, E, R> => ({
  id: options.id,
  name: options.name ?? options.id,
  every: options.every,
  cron: options.cron,
  timezone: options.timezone,
  stateSchema: options.state,
  initial: options.initial,
  run: options.run,
  hidden: options.hidden ?? false,
})

/** The services the tasks in a list need. */
export type Context<T extends ReadonlyArray<Task>> = [T[number]] extends [never]
  ? never
  : T[number] extends Task<any, any, infer R>
    ? R
    : never
