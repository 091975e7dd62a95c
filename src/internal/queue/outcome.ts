/**
 * The outcome policy: how an attempt's end (success, failure, defect, snooze, cancel, discard)
 * becomes what is written back, by the job definition's rules. Nothing here throws, whatever a
 * handler failed with: an attempt that ends must always end with an outcome, or it would not
 * count and the job would run again and again.
 */
import { Cause, Duration, Effect, Exit, Option } from "effect"
import * as Backoff from "../../Backoff.js"
import type * as Job from "../../Job.js"
import type { JobSnooze } from "../../JobError.js"
import type { JobRecord } from "../../JobRecord.js"
import { Completed, type ErrorEntry, type Outcome } from "../store/store.js"

/** Why reading a failure failed, in words, whatever was thrown. */
const thrownText = (thrown: unknown): string => {
  try {
    return thrown instanceof Error ? thrown.message : String(thrown)
  } catch {
    return "an error that cannot be read either"
  }
}

const errorTag = (error: unknown, fallback: string): string => {
  try {
    if (typeof error === "object" && error !== null && "_tag" in error && typeof error._tag === "string") {
      return error._tag
    }
  } catch {
    // A failure whose tag cannot be read is recorded under the fallback.
  }
  return fallback
}

/**
 * A failure in words. The failure value is the handler's to choose, and one that cannot be
 * read (no prototype, a throwing `message` getter or `toString`) must still be recorded, or
 * the attempt would end without an outcome and not count.
 */
const errorMessage = (error: unknown): string => {
  try {
    return typeof error === "object" && error !== null && "message" in error
      ? String(error.message)
      : String(error)
  } catch (thrown) {
    let shown: string
    try {
      shown = JSON.stringify(error) ?? Object.prototype.toString.call(error)
    } catch {
      shown = Object.prototype.toString.call(error)
    }
    return `${shown} (it could not be turned into text: ${thrownText(thrown)})`
  }
}

const prettyCause = (cause: Cause.Cause<unknown>, tag: string, message: string): string => {
  try {
    return Cause.pretty(cause)
  } catch (thrown) {
    return `${tag}: ${message} (the cause could not be printed: ${thrownText(thrown)})`
  }
}

/** What an attempt's failure is stored as. Never throws, whatever the failure holds. */
const errorEntry = (job: JobRecord, cause: Cause.Cause<unknown>, now: number) => {
  const failure = Cause.failureOption(cause)
  const error: unknown = Option.isSome(failure) ? failure.value : Cause.squash(cause)
  const tag = Option.isSome(failure) ? errorTag(error, "Error") : "Defect"
  const message = errorMessage(error)
  const entry: ErrorEntry = {
    attempt: job.attempt,
    at: new Date(now),
    tag,
    message,
    cause: prettyCause(cause, tag, message),
  }
  return { error, tag, entry }
}

/** Beyond this a retry time cannot be written down (Date's own range). */
const latestMillis = 8.64e15

/**
 * The wait before the next attempt. A backoff that fails, throws or answers no usable wait
 * must not lose the attempt: the default backoff stands in, and the stored error says why.
 */
const retryDelay = (
  backoff: Job.Definition["backoff"],
  attempt: number,
  now: number,
): Effect.Effect<{ readonly millis: number; readonly problem: string | undefined }> =>
  Effect.flatMap(
    Effect.exit(Effect.suspend(() => Effect.map(backoff.delay(attempt), Duration.toMillis))),
    (exit): Effect.Effect<{ readonly millis: number; readonly problem: string | undefined }> => {
      if (Exit.isSuccess(exit) && Math.abs(now + Math.max(0, exit.value)) <= latestMillis) {
        return Effect.succeed({ millis: Math.max(0, exit.value), problem: undefined })
      }
      const problem = Exit.isSuccess(exit)
        ? `the backoff answered a wait of ${exit.value} ms, which is no time to retry at`
        : `the backoff failed: ${errorMessage(Cause.squash(exit.cause))}`
      return Effect.map(Backoff.defaultBackoff.delay(attempt), (delay) => ({
        millis: Duration.toMillis(delay),
        problem: `${problem}; the default backoff chose the retry time`,
      }))
    },
  )

/** Turns how an attempt ended into what is written back, per the definition's rules. */
export const decideOutcome = (
  job: JobRecord,
  lease: string,
  exit: Exit.Exit<unknown, unknown>,
  now: number,
  backoff: Job.Definition["backoff"],
  deadLetter?: string,
): Effect.Effect<Outcome> => {
  const discard = (error: ErrorEntry): Outcome =>
    deadLetter === undefined
      ? { kind: "discarded", id: job.id, lease, error }
      : { kind: "deadLettered", id: job.id, lease, error, queue: deadLetter }
  if (exit._tag === "Success") return Effect.succeed(new Completed(job.id, lease, exit.value))
  const { error, tag, entry } = errorEntry(job, exit.cause, now)
  switch (tag) {
    case "JobSnooze": {
      const delayMillis = (error as JobSnooze).delayMillis
      // A snooze to no valid time counts as a failure instead: it would never run again.
      if (Number.isFinite(delayMillis) && Math.abs(now + delayMillis) <= latestMillis) {
        return Effect.succeed({ kind: "snoozed", id: job.id, lease, until: new Date(now + delayMillis) })
      }
      break
    }
    case "JobCancel":
      return Effect.succeed({ kind: "cancelled", id: job.id, lease, error: entry })
    case "JobDiscard":
    case "ArgsDecodeError":
      return Effect.succeed(discard(entry))
  }
  if (job.attempt >= job.maxAttempts) return Effect.succeed(discard(entry))
  return Effect.map(retryDelay(backoff, job.attempt, now), ({ millis, problem }) => ({
    kind: "retryable" as const,
    id: job.id,
    lease,
    error: problem === undefined ? entry : { ...entry, message: `${entry.message} (${problem})` },
    retryAt: new Date(now + millis),
  }))
}

/**
 * The outcome of an attempt whose fiber died outside every path above (a bug in effect-jobs,
 * not in the handler): still a counted failure, retried after the default backoff's base
 * wait doubled per attempt, so that no job is given back to run again forever.
 */
export const lastResort = (
  job: JobRecord,
  lease: string,
  cause: Cause.Cause<unknown>,
  now: number,
): Outcome => {
  const { entry } = errorEntry(job, cause, now)
  const error = {
    ...entry,
    tag: "Defect",
    message: `the attempt ended outside its handler: ${entry.message}`,
  }
  return job.attempt >= job.maxAttempts
    ? { kind: "discarded", id: job.id, lease, error }
    : {
        kind: "retryable",
        id: job.id,
        lease,
        error,
        retryAt: new Date(now + Math.min(1000 * 2 ** Math.min(job.attempt - 1, 12), 3_600_000)),
      }
}
