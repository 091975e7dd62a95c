/**
 * An attempt's end as a test sees it: a tagged value, typed by the handler's result and
 * failure. It is read off the same decision the runtime writes back (queue/outcome.ts), so a
 * test sees what the runtime would do: a snooze's time, whether a failure is retried.
 */
import { Cause, Duration, Effect, Either, Exit, Option, Schema } from "effect"
import type * as Job from "../../Job.js"
import { ArgsDecodeError, JobCancel, JobDiscard, JobSnooze, JobTimeout } from "../../JobError.js"
import type { JobRecord, JobState } from "../../JobRecord.js"
import { outcomeState } from "../store/outcomes.js"
import type { Outcome as StoredOutcome } from "../store/store.js"

/** The handler succeeded; `result` is its result as stored and decoded again. */
export interface Success<A> {
  readonly _tag: "Success"
  readonly job: JobRecord
  readonly state: JobState
  readonly result: A
}
/** The handler failed with one of its own errors; `retryAt` is undefined when no attempt is left. */
export interface Failure<E> {
  readonly _tag: "Failure"
  readonly job: JobRecord
  readonly state: JobState
  readonly error: E
  readonly retryAt: Date | undefined
}
/** The handler asked to run again later (`Job.snooze`); the attempt is given back. */
export interface Snooze {
  readonly _tag: "Snooze"
  readonly job: JobRecord
  readonly state: JobState
  readonly delay: Duration.Duration
  readonly until: Date
}
/** The handler cancelled its job (`Job.cancel`). */
export interface Cancel {
  readonly _tag: "Cancel"
  readonly job: JobRecord
  readonly state: JobState
  readonly reason: string
}
/** The handler discarded its job (`Job.discard`), or its stored args no longer decode. */
export interface Discard {
  readonly _tag: "Discard"
  readonly job: JobRecord
  readonly state: JobState
  readonly reason: string
}
/** The handler ran over its definition's `timeout` and was interrupted. */
export interface Timeout {
  readonly _tag: "Timeout"
  readonly job: JobRecord
  readonly state: JobState
  readonly timeout: Duration.Duration
  readonly retryAt: Date | undefined
}
/** The handler died (a thrown exception, `Effect.die`): a failed attempt, retried like a failure. */
export interface Defect {
  readonly _tag: "Defect"
  readonly job: JobRecord
  readonly state: JobState
  readonly cause: Cause.Cause<unknown>
  readonly retryAt: Date | undefined
}

/** An attempt's end. A snooze, cancel or discard the handler asked for has its own tag, never `Failure`. */
export type Outcome<A = unknown, E = unknown> =
  | Success<A>
  | Failure<Exclude<E, JobSnooze | JobCancel | JobDiscard>>
  | Snooze
  | Cancel
  | Discard
  | Timeout
  | Defect

/** A stored result decoded again, as a reader of the job's record would get it. */
const decodeResult = (definition: Job.Definition | undefined, encoded: unknown): Effect.Effect<unknown> => {
  if (definition === undefined || Option.isNone(definition.resultSchema)) return Effect.succeed(undefined)
  let stored: unknown
  try {
    stored = JSON.parse(JSON.stringify(encoded ?? null))
  } catch (error) {
    return Effect.dieMessage(`the handler's result cannot be stored as JSON: ${String(error)}`)
  }
  const decoded = Schema.decodeUnknownEither(definition.resultSchema.value)(stored)
  return Either.isRight(decoded) ? Effect.succeed(decoded.right) : Effect.die(decoded.left)
}

/** The tagged outcome of an attempt that ended with `exit`, which the runtime writes back as `stored`. */
export const classify = (
  definition: Job.Definition | undefined,
  job: JobRecord,
  exit: Exit.Exit<unknown, unknown>,
  stored: StoredOutcome,
): Effect.Effect<Outcome> => {
  const state = outcomeState[stored.kind]
  const base = { job, state }
  if (Exit.isSuccess(exit)) {
    return Effect.map(decodeResult(definition, exit.value), (result) => ({
      _tag: "Success",
      ...base,
      result,
    }))
  }
  const retryAt = stored.kind === "retryable" ? stored.retryAt : undefined
  const failure = Cause.failureOption(exit.cause)
  if (Option.isNone(failure)) return Effect.succeed({ _tag: "Defect", ...base, cause: exit.cause, retryAt })
  const error = failure.value
  if (stored.kind === "snoozed" && error instanceof JobSnooze) {
    return Effect.succeed({
      _tag: "Snooze",
      ...base,
      until: stored.until,
      delay: Duration.millis(error.delayMillis),
    })
  }
  if (stored.kind === "cancelled" && error instanceof JobCancel) {
    return Effect.succeed({ _tag: "Cancel", ...base, reason: error.reason })
  }
  if (error instanceof JobDiscard) return Effect.succeed({ _tag: "Discard", ...base, reason: error.reason })
  if (error instanceof ArgsDecodeError)
    return Effect.succeed({ _tag: "Discard", ...base, reason: error.message })
  if (error instanceof JobTimeout) {
    return Effect.succeed({
      _tag: "Timeout",
      ...base,
      timeout: Duration.millis(error.timeoutMillis),
      retryAt,
    })
  }
  return Effect.succeed({ _tag: "Failure", ...base, error: failure.value, retryAt })
}
