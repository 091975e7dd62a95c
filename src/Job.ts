/**
 * Typed job definitions, their handlers, and what a handler can ask of the runtime
 * besides succeeding or failing: snooze, cancel or discard.
 */
import { Duration, Effect, Either, FiberRef, Option, ParseResult, Schema } from "effect"
import * as Backoff from "./Backoff.js"
import type * as Hook from "./Hook.js"
import * as HookMiddleware from "./internal/hookMiddleware.js"
import { CurrentJournal, currentJob, type Journal } from "./internal/queue/journal.js"
import { ArgsDecodeError, JobCancel, JobDiscard, JobSnooze } from "./JobError.js"
import type { JobRecord } from "./JobRecord.js"
import type * as Unique from "./Unique.js"

// The handler outcomes live in JobError.ts with every other error, and stay reachable here.
export { JobCancel, JobDiscard, JobSnooze }

/** Run this job again after `duration`, without using up an attempt. */
export const snooze = (duration: Duration.DurationInput): Effect.Effect<never, JobSnooze> =>
  Effect.fail(new JobSnooze({ delayMillis: Duration.toMillis(duration) }))

/** End this job as `cancelled`, recording `reason`. */
export const cancel = (reason: string): Effect.Effect<never, JobCancel> =>
  Effect.fail(new JobCancel({ reason }))

/** End this job as `discarded`, recording `reason`. */
export const discard = (reason: string): Effect.Effect<never, JobDiscard> =>
  Effect.fail(new JobDiscard({ reason }))

const withJournal = (
  report: (journal: Journal, job: JobRecord) => Effect.Effect<void>,
): Effect.Effect<void> =>
  Effect.flatMap(FiberRef.get(currentJob), (job) =>
    job === undefined
      ? Effect.void
      : Effect.flatMap(Effect.serviceOption(CurrentJournal), (journal) =>
          Option.isNone(journal) ? Effect.void : report(journal.value, job),
        ),
  )

/**
 * Reports how far the running job has come, from 0 to 100 (a number outside is brought to the
 * nearer bound), with an optional note; `get` reads it back as the job's `progress`, and the
 * dashboard shows it. Writes are throttled per job: the first goes out at once, then at most
 * one per `progressInterval` (the last value winning), and what is left when the attempt ends
 * is written before its outcome. Never waits for the database. Outside an attempt run by a
 * worker (in `effect-jobs/testing`'s `perform`, say) it does nothing.
 */
export const progress = (percent: number, note?: string): Effect.Effect<void> =>
  Number.isFinite(percent)
    ? withJournal((journal, job) =>
        journal.report(job, { percent: Math.min(100, Math.max(0, percent)), note: note ?? null }, undefined),
      )
    : Effect.dieMessage(`Job.progress takes a number from 0 to 100, not ${percent}`)

/**
 * Writes a line to the running job's log, kept with the job across attempts (each line says
 * its attempt): the newest 100 lines, each cut at 2,000 characters, older ones dropped. `get`
 * reads them back as the job's `logs`, and the dashboard shows them. Written with the job's
 * progress, and throttled with it. Outside an attempt run by a worker it does nothing.
 */
export const log = (message: string): Effect.Effect<void> =>
  withJournal((journal, job) => journal.report(job, undefined, message))

export interface DefinitionOptions<
  Args,
  ArgsEncoded,
  Result,
  ResultEncoded,
  Resource extends string = never,
  Hooks extends ReadonlyArray<Hook.Any> = readonly [],
> {
  /** The Schema of the job's arguments. They are stored encoded, as JSON. */
  readonly args: Schema.Schema<Args, ArgsEncoded>
  /** The Schema of the handler's result, stored encoded on completion. Defaults to no result. */
  readonly result?: Schema.Schema<Result, ResultEncoded> | undefined
  /** Defaults to `"default"`. */
  readonly queue?: string | undefined
  /** Higher runs first: a whole number from -32,768 to 32,767. Defaults to 0. */
  readonly priority?: number | undefined
  /** Defaults to 20. */
  readonly maxAttempts?: number | undefined
  /** The handler is interrupted after this long. Defaults to no timeout. */
  readonly timeout?: Duration.DurationInput | undefined
  /** Defaults to `Backoff.exponential()`: 1 s doubling up to 1 hour, ±10 % jitter. */
  readonly backoff?: Backoff.BackoffInput | undefined
  /** Makes jobs of this type unique: see `Unique.Options`. Defaults to not unique. */
  readonly unique?: Unique.Options<ArgsEncoded> | undefined
  /**
   * Aims every job of this type at a resource of this kind (`"post"`, say): each insert must
   * give the resource's id (`resource` in the insert options), the handler receives it, and
   * `Jobs.cancelForResource` and `Jobs.rescheduleForResource` act on all of a resource's
   * waiting jobs at once. Defaults to none.
   */
  readonly resource?: Resource | undefined
  /**
   * Middleware and lifecycle callbacks for every job of this type (see `Hook`), run on the
   * nodes that have its handler. Their middleware runs inside the queue's, first given
   * outermost; what it provides is taken off the handler's requirements, and what the hooks
   * require is added to them. Defaults to none.
   */
  readonly hooks?: Hooks | undefined
}

/** What a handler is given: the decoded arguments, the stored job and, for a resource job, the resource's id. */
export type HandlerContext<Args, Resource extends string = never> = {
  readonly args: Args
  readonly job: JobRecord
} & ([Resource] extends [never] ? {} : { readonly resource: string })

export interface Definition<
  Type extends string = string,
  Args = any,
  ArgsEncoded = any,
  Result = any,
  Resource extends string = any,
  Hooks extends ReadonlyArray<Hook.Any> = ReadonlyArray<Hook.Any>,
> {
  readonly type: Type
  readonly argsSchema: Schema.Schema<Args, ArgsEncoded>
  readonly resultSchema: Option.Option<Schema.Schema<Result, any>>
  readonly queue: string
  readonly priority: number
  readonly maxAttempts: number
  readonly timeout: Option.Option<Duration.Duration>
  readonly backoff: Backoff.Backoff
  readonly unique: Unique.Options<any> | undefined
  /** The kind of resource the jobs are aimed at, if any. */
  readonly resource: Resource | undefined
  /** The hooks of every job of this type. */
  readonly hooks: Hooks
  /**
   * Attach the code that performs this job. The handler may fail with any error and require
   * services; the definition's hooks add theirs, and take off what their middleware provides.
   */
  readonly handler: <E, R>(
    run: (context: HandlerContext<Args, Resource>) => Effect.Effect<Result, E, R>,
  ) => Handler<Exclude<R, Hook.HooksProvided<Hooks>> | Hook.HooksContext<Hooks>, Type, Args, Result, E>
}

/**
 * A definition joined with its code, ready to register in `Jobs.layer({ handlers })`. `Args`,
 * `Result` and `E` (the handler's own failures) are kept in the type for `effect-jobs/testing`,
 * whose `perform` answers typed outcomes.
 */
export interface Handler<R = never, Type extends string = string, Args = any, Result = any, E = unknown> {
  readonly definition: Definition<Type>
  /**
   * Decode the stored args, run, and encode the result. Undecodable args fail with
   * `ArgsDecodeError`; every other failure is the handler's own.
   */
  readonly perform: (job: JobRecord) => Effect.Effect<unknown, unknown, R>
  /** Types only: never set at run time. */
  readonly "~types"?: {
    readonly args: (args: Args) => void
    readonly result: Result
    readonly error: E
  }
}

/** The arguments type of a definition. */
export type Args<D> = D extends Definition<any, infer A, any, any> ? A : never

/** The result type of a definition. */
export type Result<D> = D extends Definition<any, any, any, infer R> ? R : never

/**
 * True for a definition whose jobs are aimed at a resource, false for one whose jobs are not,
 * or whose resource is not known to the types (a plain `Definition`): the run-time checks
 * cover those.
 */
export type TargetsResource<D> = D extends { readonly resource: infer R }
  ? 0 extends 1 & R
    ? false
    : [NonNullable<R>] extends [never]
      ? false
      : true
  : false

const describeParseError = (error: ParseResult.ParseError) => ParseResult.TreeFormatter.formatErrorSync(error)

/**
 * What JSON can carry. Args are stored as JSON, so their Schema must encode to this: a
 * Schema whose encoded side holds a `Date` or a `bigint` (`Schema.DateFromSelf`,
 * `Schema.BigIntFromSelf`) would not come back as it went in. Use `Schema.Date` or
 * `Schema.BigInt`, which encode to strings.
 */
export type Json =
  | null
  | boolean
  | number
  | string
  | ReadonlyArray<Json>
  | { readonly [key: string]: Json | undefined }

export const make = <
  Type extends string,
  Args,
  ArgsEncoded extends Json,
  Result = void,
  ResultEncoded = void,
  const Resource extends string = never,
  const Hooks extends ReadonlyArray<Hook.Any> = readonly [],
>(
  type: Type,
  options: DefinitionOptions<Args, ArgsEncoded, Result, ResultEncoded, Resource, Hooks>,
): Definition<Type, Args, ArgsEncoded, Result, Resource, Hooks> => {
  // Synchronous decoding: args come from JSON, and skipping an Effect per job is measurably faster.
  const decodeArgs = Schema.decodeUnknownEither(options.args)
  const encodeResult = options.result ? Schema.encodeEither(options.result) : undefined
  const definition: Definition<Type, Args, ArgsEncoded, Result, Resource, Hooks> = {
    type,
    argsSchema: options.args,
    resultSchema: Option.fromNullable(options.result),
    queue: options.queue ?? "default",
    priority: options.priority ?? 0,
    maxAttempts: options.maxAttempts ?? 20,
    timeout: Option.map(Option.fromNullable(options.timeout), Duration.decode),
    backoff: Backoff.from(options.backoff),
    unique: options.unique,
    resource: options.resource,
    hooks: options.hooks ?? ([] as unknown as Hooks),
    handler: (run) => {
      const perform = (job: JobRecord): Effect.Effect<unknown, unknown, any> => {
        const args = decodeArgs(job.args)
        if (Either.isLeft(args)) {
          return Effect.fail(new ArgsDecodeError({ type, reason: describeParseError(args.left) }))
        }
        const context = { args: args.right, job, resource: job.resourceId } as unknown as HandlerContext<
          Args,
          Resource
        >
        const result = run(context)
        if (encodeResult === undefined) return Effect.as(result, null)
        return Effect.flatMap(result, (value) => {
          const encoded = encodeResult(value)
          // A result that does not encode is a bug in the handler, not a retryable failure.
          return Either.isRight(encoded) ? Effect.succeed(encoded.right) : Effect.die(encoded.left)
        })
      }
      return {
        definition: definition as Definition<Type>,
        // Middleware sees the whole attempt: decoding the args, the handler and encoding the result.
        perform: HookMiddleware.hasMiddleware(definition.hooks)
          ? HookMiddleware.around(definition.hooks, perform)
          : perform,
      }
    },
  }
  return definition
}
