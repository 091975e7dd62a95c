/**
 * The cluster-wide controls of a stored task, for any process: pause, resume, and a request
 * for a run. The change is stored; the signal that follows only wakes the task managers, which
 * read the stored rows (a signal is a hint, anyone may send one).
 */
import { Clock, Effect } from "effect"
import { type DatabaseError, TaskNotFound } from "../../JobError.js"
import type * as Tasks from "../../Tasks.js"
import { signal } from "../api/signals.js"
import { toDatabaseError } from "../store/retryDatabase.js"
import type { Store } from "../store/store.js"

export const make = (store: Store, nodeTimeoutMillis: number): Tasks.TaskControls => {
  /** The task's stats once `change` found it, or `TaskNotFound`; `wake` tells the nodes. */
  const controlled = (
    id: string,
    operation: string,
    change: Effect.Effect<boolean, DatabaseError>,
    wake: boolean,
  ) =>
    Effect.gen(function* () {
      if (!(yield* change)) return yield* new TaskNotFound({ task: id })
      // Read before the nodes are woken, so the answer shows the change rather than a run it
      // already caused.
      const [stats] = yield* store
        .taskStats([id], true, nodeTimeoutMillis)
        .pipe(Effect.mapError(toDatabaseError(`reading task "${id}"`)))
      if (stats === undefined) return yield* new TaskNotFound({ task: id })
      if (wake) yield* signal(store, { kind: "task", id }, `${operation} task "${id}"`)
      return stats
    })

  const setPaused = (id: string, paused: boolean) =>
    Effect.flatMap(Clock.currentTimeMillis, (now) =>
      store
        .setTaskPaused(id, paused, new Date(now))
        .pipe(Effect.mapError(toDatabaseError(`${paused ? "pausing" : "resuming"} task "${id}"`))),
    )

  return {
    requestRun: (id) =>
      Effect.suspend(() =>
        controlled(
          id,
          "requesting a run of",
          store.requestTaskRun(id).pipe(Effect.mapError(toDatabaseError(`requesting a run of task "${id}"`))),
          true,
        ),
      ).pipe(Effect.withSpan("Tasks.requestRun", { attributes: { task: id }, captureStackTrace: false })),
    pause: (id) =>
      controlled(id, "pausing", setPaused(id, true), false).pipe(
        Effect.withSpan("Tasks.pause", { attributes: { task: id }, captureStackTrace: false }),
      ),
    resume: (id) =>
      controlled(id, "resuming", setPaused(id, false), true).pipe(
        Effect.withSpan("Tasks.resume", { attributes: { task: id }, captureStackTrace: false }),
      ),
  }
}
