/**
 * This node's task manager: register and unregister stateful recurring tasks, run one on
 * demand, and read how they are doing. Every node that registers a task may run it; each
 * run happens on exactly one of them.
 */
import { Context, type Duration, type Effect } from "effect"
import type {
  DatabaseError,
  InvalidTask,
  TaskAlreadyRegistered,
  TaskAlreadyRunning,
  TaskNotRegistered,
} from "./JobError.js"
import type * as Task from "./Task.js"

export type TaskStatus = "waiting" | "running"

export interface TaskStats {
  readonly id: string
  readonly name: string
  /** Running on some node (`runningOn`), or waiting for its next run. */
  readonly status: TaskStatus
  readonly runningOn: string | null
  /** Null once a run-once task has run. */
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
  /** The stored state, encoded, that the next run receives. */
  readonly state: unknown
}

export type TaskOutcome = "success" | "failure" | "defect" | "interrupted"

/** One run of a task, kept in its history. */
export interface TaskRun {
  readonly id: number
  readonly taskId: string
  /** The task's name when it ran. */
  readonly taskName: string
  readonly node: string
  /** `schedule` for a run that came due, `manual` for `runNow`. */
  readonly trigger: "schedule" | "manual"
  readonly outcome: TaskOutcome
  readonly error: string | null
  /** The state after the run, encoded. */
  readonly state: unknown
  readonly startedAt: Date
  readonly finishedAt: Date
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
     * Its stored state and history stay, for a later `register`.
     */
    readonly unregister: (id: string) => Effect.Effect<void, TaskNotRegistered>
    /** Runs the task on this node now, whatever its schedule, and answers the run. */
    readonly runNow: (
      id: string,
    ) => Effect.Effect<TaskRun, TaskNotRegistered | TaskAlreadyRunning | DatabaseError>
    /** The tasks registered on this node, by id; hidden ones only with `includeHidden`. */
    readonly stats: (options?: {
      readonly includeHidden?: boolean | undefined
    }) => Effect.Effect<ReadonlyArray<TaskStats>, DatabaseError>
    /** The task's runs, newest first (at most `limit`, default 50); kept across renames. */
    readonly history: (
      id: string,
      options?: { readonly limit?: number | undefined },
    ) => Effect.Effect<ReadonlyArray<TaskRun>, DatabaseError>
  }
>() {}
