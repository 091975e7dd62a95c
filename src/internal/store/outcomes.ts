/**
 * How an attempt ended, and the form in which the finish statements write it back.
 */
import type { JobId, JobState } from "../../JobRecord.js"
import * as Json from "../api/json.js"

/** An attempt that succeeded; a class for the reason `PlainCompletion` gives. */
export class Completed {
  readonly kind = "completed"
  constructor(
    readonly id: JobId,
    readonly lease: string,
    readonly result: unknown,
  ) {}
}

export interface ErrorEntry {
  readonly attempt: number
  readonly at: Date
  readonly tag: string
  readonly message: string
  readonly cause: string
}

/** How an attempt ended, as written back to the job. Applied only while `lease` still matches. */
export type Outcome =
  | Completed
  | {
      readonly kind: "retryable"
      readonly id: JobId
      readonly lease: string
      readonly error: ErrorEntry
      readonly retryAt: Date
    }
  | { readonly kind: "discarded"; readonly id: JobId; readonly lease: string; readonly error: ErrorEntry }
  | { readonly kind: "cancelled"; readonly id: JobId; readonly lease: string; readonly error: ErrorEntry }
  /** Back to `scheduled` at `until`, giving the attempt back. */
  | { readonly kind: "snoozed"; readonly id: JobId; readonly lease: string; readonly until: Date }
  /** Back to `available`, giving the attempt back: the node stopped before the job finished. */
  | { readonly kind: "released"; readonly id: JobId; readonly lease: string }
  /** Discarded from its queue and moved, `available` with its attempts reset, to the queue's dead-letter queue. */
  | {
      readonly kind: "deadLettered"
      readonly id: JobId
      readonly lease: string
      readonly error: ErrorEntry
      readonly queue: string
    }

/** The state a stored outcome leaves its job in. */
export const outcomeState: Record<Outcome["kind"], JobState> = {
  completed: "completed",
  retryable: "retryable",
  discarded: "discarded",
  cancelled: "cancelled",
  snoozed: "scheduled",
  released: "available",
  deadLettered: "available",
}

const encodeError = (e: ErrorEntry) => ({ ...e, at: e.at.toISOString() })

const encodeOutcome = (o: Outcome, at: string) => ({
  id: o.id,
  lease: o.lease,
  state: outcomeState[o.kind],
  attempt_delta: o.kind === "snoozed" || o.kind === "released" ? -1 : 0,
  result: o.kind === "completed" ? o.result : null,
  error: "error" in o ? encodeError(o.error) : null,
  scheduled_at:
    o.kind === "retryable"
      ? o.retryAt.toISOString()
      : o.kind === "snoozed"
        ? o.until.toISOString()
        : o.kind === "deadLettered"
          ? at
          : null,
  dead_letter_queue: o.kind === "deadLettered" ? o.queue : null,
  at,
})

/**
 * A completion with no result: by far the most common outcome, written by a statement of its
 * own that reads three arrays instead of parsing a JSON document per job.
 *
 * A class rather than an object literal, as are the other records that wait for an outcome
 * write: V8 moves the objects of a literal that often outlives a young-generation collection
 * to the old generation from then on, where each one, dead within milliseconds, stays until
 * the next full collection and keeps whatever young objects it points to alive too (see
 * docs/architecture.md, "Memory on the per-job path"). V8 keeps no such record for objects a
 * constructor builds, so these are born young and die young.
 */
export class PlainCompletion {
  constructor(
    readonly id: number,
    readonly lease: string,
    readonly at: string,
  ) {}
}

/** An outcome ready for the finish statements: a plain completion, or JSON for the rest. */
export type SerializedOutcome = PlainCompletion | string

// Outcomes come in bursts that finish within the same millisecond; formatting a date costs
// more than the rest of a plain completion, so the last one is kept.
let lastMillis = Number.NaN
let lastIso = ""
const isoOf = (at: Date): string => {
  const millis = at.getTime()
  if (millis !== lastMillis) {
    lastIso = at.toISOString()
    lastMillis = millis
  }
  return lastIso
}

/**
 * An outcome as the finish statements read it. Throws when it cannot be stored: a result
 * JSON cannot carry (a BigInt, a cycle, a throwing `toJSON`), a time that is not a valid date.
 * With `keepCompleted` false, completed jobs are deleted rather than kept, so a completion's
 * result has nowhere to go and every completion is a plain one.
 */
export const serializeOutcome = (outcome: Outcome, at: Date, keepCompleted = true): SerializedOutcome => {
  if (
    outcome.kind === "completed" &&
    (!keepCompleted || outcome.result === null || outcome.result === undefined)
  ) {
    return new PlainCompletion(outcome.id, outcome.lease, isoOf(at))
  }
  // Text PostgreSQL refuses (a NUL, a lone surrogate) in a result or an error is replaced:
  // refusing the outcome would lose the attempt, and nobody can correct it any more.
  return Json.storable(JSON.stringify(encodeOutcome(outcome, at.toISOString())))
}
