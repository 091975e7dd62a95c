/**
 * What the admin operations tell the cluster after they changed stored jobs: one path for a
 * cancel, whether it came for one job or for a filter's batch.
 */
import { Effect } from "effect"
import type { DatabaseError } from "../../JobError.js"
import type { JobRecord, JobState } from "../../JobRecord.js"
import { type Signal, sendSignal } from "../node/notifier.js"
import { toDatabaseError } from "../store/retryDatabase.js"
import type * as Store from "../store/store.js"
import type { LocalNode } from "./api.js"

/** Sends a signal, failing as the operation that sent it. */
export const signal = (
  store: Store.Store,
  payload: Signal,
  operation: string,
): Effect.Effect<void, DatabaseError> =>
  sendSignal(store, payload).pipe(Effect.mapError(toDatabaseError(operation)))

/**
 * A job just cancelled in the store: this node's events hear of it, and one that was executing
 * is interrupted here at once if it runs here, and on every other node through the signal.
 */
export const announceCancel = (
  store: Store.Store,
  local: LocalNode,
  record: JobRecord,
  previous: JobState,
  at: number,
): Effect.Effect<void, DatabaseError> =>
  Effect.suspend(() => {
    local.cancelled(record, at)
    return previous === "executing"
      ? Effect.zipRight(
          local.interrupt(record.id),
          signal(store, { kind: "cancel", id: record.id }, "signalling a cancel"),
        )
      : Effect.void
  })
