/**
 * Hooks: code a queue or a job definition runs around each attempt (middleware) and when a
 * job's lifecycle moves on (callbacks). Give them in `QueueConfig.hooks` or in the definition's
 * `hooks`; their requirements become the requirements of `Jobs.layer`.
 *
 * Middleware wraps the attempt in the attempt's own fiber: it may provide services, annotate
 * logs, open a span, measure, or refuse to run by failing (the attempt then fails as if the
 * handler had, and its failure is the middleware's error). Callbacks run later, in a fiber of
 * their own on the node where the event happens, so a slow callback never slows a queue; a
 * callback that fails is logged and counted in `effect_jobs_hook_failures_total` and changes
 * nothing about the job.
 */
import { type Context, Effect } from "effect"
import type { JobEvent } from "./JobEvent.js"
import type { JobRecord } from "./JobRecord.js"

/** One kind of event, by its tag. */
export type Event<Tag extends JobEvent["_tag"]> = Extract<JobEvent, { readonly _tag: Tag }>

/** A callback for one kind of event. What it answers is ignored; a failure is logged and counted. */
export type Callback<Tag extends JobEvent["_tag"], R> = (
  event: Event<Tag>,
) => Effect.Effect<unknown, unknown, R>

/**
 * Wraps one attempt. `attempt` is the rest of the attempt (inner hooks and the handler); run it
 * once, or fail without running it to refuse the attempt. Its success value is the stored
 * result: hand it on unchanged.
 */
export type Middleware<R, Provides> = (
  attempt: Effect.Effect<unknown, unknown, Provides>,
  job: JobRecord,
) => Effect.Effect<unknown, unknown, R>

export interface Hook<R = never, Provides = never> {
  /** Names the hook in logs and in the failure metric. */
  readonly name: string
  readonly around?: Middleware<R, Provides> | undefined
  /** After an insert made on this node returns (inside a transaction: before the commit). */
  readonly inserted?: Callback<"Inserted", R> | undefined
  /** When an attempt starts on this node. */
  readonly started?: Callback<"Started", R> | undefined
  /** When an attempt's completion is written. */
  readonly completed?: Callback<"Completed", R> | undefined
  /** When an attempt's failure is written and the job will be retried. */
  readonly failed?: Callback<"Failed", R> | undefined
  /** When an attempt ends the job as discarded (or moves it to the dead-letter queue). */
  readonly discarded?: Callback<"Discarded", R> | undefined
  /** When a job is cancelled: by its handler, or through the API called on this node. */
  readonly cancelled?: Callback<"Cancelled", R> | undefined
  /** When an attempt's snooze is written. */
  readonly snoozed?: Callback<"Snoozed", R> | undefined
  /** When this node rescues a job a stopped node left executing (the leader does). */
  readonly rescued?: Callback<"Rescued", R> | undefined
}

/** Any hook: what lists of hooks are made of. */
export type Any = Hook<any, never>

/** The callback field of each event tag. */
export const callbackOf = {
  Inserted: "inserted",
  Started: "started",
  Completed: "completed",
  Failed: "failed",
  Discarded: "discarded",
  Cancelled: "cancelled",
  Snoozed: "snoozed",
  Rescued: "rescued",
} as const satisfies Record<JobEvent["_tag"], keyof Hook>

/**
 * A hook. Its requirements are inferred from its middleware and callbacks. A middleware that
 * provides services to the handler names them by its `attempt` parameter's type
 * (`(attempt: Effect.Effect<unknown, unknown, Db>) => ...`), or use `provideService`; on a job
 * definition, what it provides is taken off the handler's requirements.
 */
export const make = <R = never, Provides = never>(hook: Hook<R, Provides>): Hook<R, Provides> => hook

/**
 * Middleware that builds a service for each attempt (a request-scoped logger, a tenant's
 * connection) and provides it to the handler.
 */
export const provideService = <I, S, E, R>(
  name: string,
  tag: Context.Tag<I, S>,
  service: Effect.Effect<S, E, R>,
): Hook<R, I> => ({
  name,
  around: (attempt) => Effect.flatMap(service, (value) => Effect.provideService(attempt, tag, value)),
})

/** The services a list of hooks requires. */
export type HooksContext<Hooks> =
  Hooks extends ReadonlyArray<infer H>
    ? [H] extends [never]
      ? never
      : H extends Hook<infer R, any>
        ? R
        : never
    : never

/** The services the middleware of a list of hooks provides to the handler. */
export type HooksProvided<Hooks> =
  Hooks extends ReadonlyArray<infer H>
    ? [H] extends [never]
      ? never
      : H extends Hook<any, infer P>
        ? P
        : never
    : never
