/**
 * This node's task manager: register and unregister stateful recurring tasks, run one on
 * demand, and read how every stored task is doing, cluster-wide. Every node that registers a
 * task may run it; each run happens on exactly one of them.
 */
import { Context, type Duration, type Effect, type Stream } from "effect"
import type {
  DatabaseError,
  InvalidTask,
  TaskAlreadyRegistered,
  TaskAlreadyRunning,
  TaskNotFound,
  TaskNotRegistered,
  TaskStateDecodeError,
} from "./JobError.js"
import type * as Task from "./Task.js"
import type { TaskEvent } from "./TaskEvent.js"

export type TaskStatus = "waiting" | "running"

/**
 * A stored task as it stands. `State` is the decoded state when read through the task's
 * definition (`stats(task)`), and the encoded JSON (`unknown`) when read by listing.
 */
export interface TaskStats<State = unknown> {
  readonly id: string
  readonly name: string
  /** Running on some node (`runningOn`), or waiting for its next run. */
  readonly status: TaskStatus
  readonly runningOn: string | null
  /** Paused on every node (`pause`): not started when due; a requested run still starts. */
  readonly paused: boolean
  /** When a run was requested (`requestRun`) that no node has finished yet, if one was. */
  readonly runRequestedAt: Date | null
  /** Null once a run-once task has run. While paused, when it would be due. */
  readonly nextRunAt: Date | null
  readonly lastRunAt: Date | null
  /** The interval, for a task run `every` so long. */
  readonly every: Duration.Duration | null
  /** The cron expression and its time zone, for a task run on a cron. */
  readonly cron: string | null
  readonly timezone: string | null
  /** False for a run-once task (an interval of zero). */
  readonly recurs: boolean
  readonly successes: number
  readonly failures: number
  readonly lastError: string | null
  /** When the counters started: the first registration, or the last reset by a defect. */
  readonly startedAt: Date
  /** When a defect last reset the task, if ever. */
  readonly restartedAt: Date | null
  readonly hidden: boolean
  /** The nodes with a recent heartbeat that have the task registered, by name. */
  readonly nodes: ReadonlyArray<string>
  /** The state the next run receives: decoded through the definition, else as stored. */
  readonly state: State
}

export type TaskOutcome = "success" | "failure" | "defect" | "interrupted"

/** One run of a task, kept in its history; `State` as in `TaskStats`. */
export interface TaskRun<State = unknown> {
  readonly id: number
  readonly taskId: string
  /** The task's name when it ran. */
  readonly taskName: string
  readonly node: string
  /** `schedule` for a run that came due, `manual` for `runNow` or a requested run. */
  readonly trigger: "schedule" | "manual"
  readonly outcome: TaskOutcome
  readonly error: string | null
  /** The state after the run: decoded through the definition, else as stored. */
  readonly state: State
  readonly startedAt: Date
  readonly finishedAt: Date
}

export interface StatsOptions {
  /** List hidden tasks too. Defaults to false. */
  readonly includeHidden?: boolean | undefined
}

export interface HistoryOptions {
  /** The most runs answered, newest first. Defaults to 50, at most 1,000. */
  readonly limit?: number | undefined
}

/**
 * Reads stored tasks, whichever nodes register them. Given a task's definition, it reads that
 * one task and decodes its state with the definition's Schema.
 */
export interface ReadStats {
  /** Every stored task, by id; hidden ones only with `includeHidden`. States as stored. */
  (options?: StatsOptions): Effect.Effect<ReadonlyArray<TaskStats>, DatabaseError>
  /** The task of this definition, hidden or not, with its state decoded. */
  <S>(
    task: Task.Task<S, any, any>,
  ): Effect.Effect<TaskStats<S>, TaskNotFound | TaskStateDecodeError | DatabaseError>
}

/** Reads a task's runs, newest first; kept across renames. */
export interface ReadHistory {
  /** By id, states as stored; no runs for an unknown id. */
  (id: string, options?: HistoryOptions): Effect.Effect<ReadonlyArray<TaskRun>, DatabaseError>
  /** Through the task's definition, each run's state decoded with its Schema. */
  <S>(
    task: Task.Task<S, any, any>,
    options?: HistoryOptions,
  ): Effect.Effect<ReadonlyArray<TaskRun<S>>, TaskStateDecodeError | DatabaseError>
}

/**
 * What any process (a worker, the client, the dashboard, the command line) can do with a
 * stored task, through the database: every node follows. Each answers the task's stats after
 * the change, and fails with `TaskNotFound` for an id no node ever registered.
 */
export interface TaskControls {
  /**
   * Asks for a run now: a node that has the task registered starts it at once (woken by a
   * notification), paused or not, or as soon as its current run ends. Its history records it
   * as `manual`. A request already pending stays as it is; one for a task no live node has
   * registered waits for a node that registers it (`nodes` in the answer is empty then).
   */
  readonly requestRun: (id: string) => Effect.Effect<TaskStats, TaskNotFound | DatabaseError>
  /**
   * Stops starting the task when it comes due, on every node, until `resume`. A run under way
   * finishes; a requested run still starts. The pause is stored, so it outlives restarts.
   */
  readonly pause: (id: string) => Effect.Effect<TaskStats, TaskNotFound | DatabaseError>
  /** Undoes `pause`. A run that came due while paused starts at once, as after downtime. */
  readonly resume: (id: string) => Effect.Effect<TaskStats, TaskNotFound | DatabaseError>
}

export class Tasks extends Context.Tag("effect-jobs/Tasks")<
  Tasks,
  {
    /**
     * Adds a task to this node's manager. A task stored before (by an earlier run of the app,
     * or by another node) keeps its state, counters and history; its name may change.
     */
    readonly register: <S, E, R>(
      task: Task.Task<S, E, R>,
    ) => Effect.Effect<TaskStats, InvalidTask | TaskAlreadyRegistered | DatabaseError, R>
    /**
     * Removes a task from this node's manager, interrupting its run here if there is one.
     * Its stored state and history stay, for a later `register` and for `stats`.
     */
    readonly unregister: (id: string) => Effect.Effect<void, TaskNotRegistered | DatabaseError>
    /** Runs the task on this node now, whatever its schedule, and answers the run. */
    readonly runNow: (
      id: string,
    ) => Effect.Effect<TaskRun, TaskNotRegistered | TaskAlreadyRunning | DatabaseError>
    /** Cluster-wide controls of a stored task, as the client's `requestTaskRun`, `pauseTask` and `resumeTask`. */
    readonly requestRun: TaskControls["requestRun"]
    readonly pause: TaskControls["pause"]
    readonly resume: TaskControls["resume"]
    /**
     * Every stored task, cluster-wide (registered here, on other nodes, or on none now), each
     * with the live nodes that have it registered; or, given a definition, that task with its
     * state decoded.
     */
    readonly stats: ReadStats
    /** The task's runs, newest first (at most `limit`, default 50); kept across renames. */
    readonly history: ReadHistory
    /**
     * The runs of this node's tasks as they happen: `Started`, then `Succeeded`, `Failed` or
     * `Reset` once the outcome is stored. A run cut short (shutdown, unregister) ends with no
     * event. Each subscriber gets the events published after its stream starts.
     */
    readonly events: Stream.Stream<TaskEvent>
  }
>() {}
