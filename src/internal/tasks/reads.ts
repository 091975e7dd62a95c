/**
 * Reading stored tasks and their history, for the task manager and the client alike: listings
 * answer states as stored; reads through a task's definition decode them with its Schema.
 */
import { Effect, ParseResult, Schema } from "effect"
import { TaskNotFound, TaskStateDecodeError } from "../../JobError.js"
import type * as Task from "../../Task.js"
import type * as Tasks from "../../Tasks.js"
import { toDatabaseError } from "../store/retryDatabase.js"
import type { TasksStore } from "../store/tasks.js"

/** A definition, told apart from the options or id the untyped forms take. */
const isTask = (value: unknown): value is Task.Task =>
  typeof value === "object" && value !== null && "stateSchema" in value && "run" in value

/** A stored row (stats or a run) with its state decoded through the task's Schema. */
const decodeState = <S, A extends { readonly state: unknown }>(task: Task.Task<S>, row: A, run?: number) =>
  Schema.decodeUnknown(task.stateSchema)(row.state).pipe(
    Effect.mapBoth({
      onFailure: (error) =>
        new TaskStateDecodeError({
          task: task.id,
          ...(run === undefined ? {} : { run }),
          reason: ParseResult.TreeFormatter.formatErrorSync(error),
        }),
      onSuccess: (state) => ({ ...row, state }),
    }),
  )

export const make = (
  store: TasksStore,
  nodeTimeoutMillis: number,
): { readonly stats: Tasks.ReadStats; readonly history: Tasks.ReadHistory } => {
  const all = (options: Tasks.StatsOptions = {}) =>
    store
      .taskStats(undefined, options.includeHidden ?? false, nodeTimeoutMillis)
      .pipe(Effect.mapError(toDatabaseError("reading task stats")))

  const one = <S>(task: Task.Task<S>) =>
    Effect.gen(function* () {
      const [stats] = yield* store
        .taskStats([task.id], true, nodeTimeoutMillis)
        .pipe(Effect.mapError(toDatabaseError(`reading the stats of task "${task.id}"`)))
      if (stats === undefined) return yield* new TaskNotFound({ task: task.id })
      return (yield* decodeState(task, stats)) satisfies Tasks.TaskStats<S>
    })

  const runs = (id: string, options: Tasks.HistoryOptions = {}) =>
    store
      .taskHistory(id, options.limit ?? 50)
      .pipe(Effect.mapError(toDatabaseError(`reading the history of task "${id}"`)))

  const typedRuns = <S>(task: Task.Task<S>, options?: Tasks.HistoryOptions) =>
    Effect.flatMap(runs(task.id, options), (found) =>
      Effect.forEach(
        found,
        (run): Effect.Effect<Tasks.TaskRun<S>, TaskStateDecodeError> => decodeState(task, run, run.id),
      ),
    )

  const stats = ((arg?: Tasks.StatsOptions | Task.Task) =>
    isTask(arg) ? one(arg) : all(arg)) as Tasks.ReadStats
  const history = ((arg: string | Task.Task, options?: Tasks.HistoryOptions) =>
    isTask(arg) ? typedRuns(arg, options) : runs(arg, options)) as Tasks.ReadHistory
  return { stats, history }
}
