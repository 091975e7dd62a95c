/**
 * `perform`: one attempt of a handler without a database, its args stored and read back as
 * an insert and a claim would (encoded with the definition's Schema, through JSON, decoded).
 */
import { Cause, Clock, Effect, Exit, Option } from "effect"
import type * as Job from "../../Job.js"
import {
  ArgsDecodeError,
  type InvalidJobArgs,
  type InvalidJobOptions,
  type PayloadTooLarge,
} from "../../JobError.js"
import { JobRecord } from "../../JobRecord.js"
import { checkResource } from "../api/api.js"
import {
  checkMeta,
  checkQueueName,
  checkWholeNumber,
  encodeArgs,
  maxInt,
  maxSmallint,
} from "../api/validation.js"
import * as Attempt from "./attempt.js"
import type { Outcome } from "./outcome.js"

export interface PerformOptions {
  /** The attempt the handler sees as `job.attempt`; it decides whether a failure is retried. Defaults to 1. */
  readonly attempt?: number | undefined
  /** Defaults to the definition's `maxAttempts`. */
  readonly maxAttempts?: number | undefined
  /** The job's `meta`. Defaults to `{}`. */
  readonly meta?: Record<string, unknown> | undefined
  /** The resource's id, required for a definition with a `resource` type. */
  readonly resource?: string | undefined
  /** Defaults to the definition's queue. */
  readonly queue?: string | undefined
  /** Defaults to the definition's priority. */
  readonly priority?: number | undefined
}

/** The node name a performed job shows in `attemptedBy`. */
export const testNode = "effect-jobs-test"

export type PerformError = InvalidJobArgs | PayloadTooLarge | InvalidJobOptions | ArgsDecodeError

export const perform = <R, A, Res, E>(
  handler: Job.Handler<R, string, A, Res, E>,
  args: NoInfer<A>,
  options: PerformOptions = {},
): Effect.Effect<Outcome<Res, E>, PerformError, R> =>
  Effect.gen(function* () {
    const definition = handler.definition
    const attempt = options.attempt ?? 1
    const maxAttempts = options.maxAttempts ?? definition.maxAttempts
    const queue = options.queue ?? definition.queue
    const priority = options.priority ?? definition.priority
    yield* checkWholeNumber("attempt", attempt, 1, maxInt)
    yield* checkWholeNumber("maxAttempts", maxAttempts, 1, maxInt)
    yield* checkQueueName(queue)
    yield* checkWholeNumber("priority", priority, 0, maxSmallint)
    yield* checkMeta(options.meta)
    const resource = yield* checkResource(definition, options.resource)
    const { argsJson } = yield* encodeArgs(definition, [args], 1024 * 1024)
    const now = new Date(yield* Clock.currentTimeMillis)
    const job = new JobRecord({
      id: 1 as JobRecord["id"],
      queue,
      type: definition.type,
      args: JSON.parse(argsJson[0]!),
      state: "executing",
      priority,
      attempt,
      maxAttempts,
      rescues: 0,
      errors: [],
      result: null,
      meta: options.meta ?? {},
      scheduledAt: now,
      attemptedAt: now,
      attemptedBy: testNode,
      completedAt: null,
      cancelledAt: null,
      discardedAt: null,
      insertedAt: now,
      resourceType: resource?.type ?? null,
      resourceId: resource?.id ?? null,
    })
    const { outcome, exit } = yield* Attempt.run(
      new Map([[definition.type, handler]]),
      testNode,
      job,
      "perform",
    )
    // Args that do not survive storage are the test's finding, not an outcome of the handler.
    const failure = Exit.isFailure(exit) ? Cause.failureOption(exit.cause) : Option.none()
    if (Option.isSome(failure) && failure.value instanceof ArgsDecodeError) return yield* failure.value
    return outcome as Outcome<Res, E>
  }) as Effect.Effect<Outcome<Res, E>, PerformError, R>
