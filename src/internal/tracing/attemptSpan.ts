/**
 * The consumer span of one attempt, after OpenTelemetry's messaging conventions:
 * `process {queue}`, tied to the span that inserted the job by a link (the default), as its
 * child, or not at all. The producer's context comes from the job's stored `traceparent`.
 */
import { Cause, Effect, Exit, Option } from "effect"
import type { JobRecord } from "../../JobRecord.js"
import { parse, traceparentKey } from "./traceContext.js"

/**
 * How an attempt's span relates to the span that inserted its job. `link` starts a trace of
 * its own that links to the insert (a job may run long after, and many times); `parent` puts
 * the attempt in the inserting trace; `none` ignores it.
 */
export type TraceLinking = "link" | "parent" | "none"

export const messagingSystem = "effect_jobs"

/** What the span's status and `job.outcome` say of the handler's exit. */
const outcomeOf = (exit: Exit.Exit<unknown, unknown>): string => {
  if (Exit.isSuccess(exit)) return "completed"
  if (Cause.isInterruptedOnly(exit.cause)) return "interrupted"
  const failure = Cause.failureOption(exit.cause)
  const tag =
    Option.isSome(failure) && typeof failure.value === "object" && failure.value !== null
      ? (failure.value as { _tag?: unknown })._tag
      : undefined
  switch (tag) {
    case "JobSnooze":
      return "snoozed"
    case "JobCancel":
      return "cancelled"
    case "JobDiscard":
      return "discarded"
    default:
      return "failed"
  }
}

/** Runs an attempt in its `process {queue}` span; a snooze ends it as OK, being no error. */
export const traceAttempt = <A, E>(
  run: Effect.Effect<A, E>,
  job: JobRecord,
  linking: TraceLinking,
): Effect.Effect<A, E> => {
  const producer = linking === "none" ? undefined : parse(job.meta[traceparentKey])
  const queueTime =
    job.attemptedAt === null ? undefined : Math.max(0, job.attemptedAt.getTime() - job.scheduledAt.getTime())
  return Effect.flatMap(
    Effect.makeSpan(`process ${job.queue}`, {
      kind: "consumer",
      captureStackTrace: false,
      ...(producer !== undefined && linking === "parent"
        ? { parent: producer }
        : {
            root: true,
            links:
              producer === undefined ? [] : [{ _tag: "SpanLink" as const, span: producer, attributes: {} }],
          }),
      attributes: {
        "messaging.system": messagingSystem,
        "messaging.operation.type": "process",
        "messaging.operation.name": "process",
        "messaging.destination.name": job.queue,
        "messaging.message.id": String(job.id),
        "job.id": job.id,
        "job.queue": job.queue,
        "job.type": job.type,
        "job.attempt": job.attempt,
        "job.max_attempts": job.maxAttempts,
        "job.priority": job.priority,
        ...(queueTime === undefined ? {} : { "job.queue_time_ms": queueTime }),
      },
    }),
    (span) =>
      Effect.onExit(Effect.withParentSpan(run, span), (exit) =>
        Effect.flatMap(
          Effect.clockWith((clock) => clock.currentTimeNanos),
          (now) =>
            Effect.sync(() => {
              const outcome = outcomeOf(exit)
              span.attribute("job.outcome", outcome)
              span.end(now, outcome === "snoozed" ? Exit.void : exit)
            }),
        ),
      ),
  )
}
