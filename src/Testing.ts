/**
 * `effect-jobs/testing`: test an app's jobs under `@effect/vitest`, on the `TestClock`.
 *
 * - `perform(handler, args)` runs one attempt of a handler, its args stored and read back as
 *   the runtime would, and answers a typed, tagged `Outcome`.
 * - `layer({ handlers })` provides `Jobs`, `JobsClient`, `Schedules` and `Tasks` without queues
 *   or background fibers: in `manual` mode inserts are stored and nothing runs until `drain`;
 *   in `inline` mode an insert runs its job before it returns. `setMode` switches within a test.
 *   `runTasks` runs the tasks that are due.
 * - `assertEnqueued`, `refuteEnqueued` and `allEnqueued` look for jobs of a definition.
 * - `pglite()` opens an embedded database from a migrated image, made once, or takes the one
 *   an earlier layer of the process gave back, put back as the image left it.
 *
 * Time is the `Clock`'s: `TestClock.adjust` is what makes scheduled jobs, backoffs, cron ticks
 * and task runs due.
 */

import { randomUUID } from "node:crypto"
import type { SqlClient } from "@effect/sql/SqlClient"
import { SqlClient as SqlClientTag } from "@effect/sql/SqlClient"
import type { SqlError } from "@effect/sql/SqlError"
import { Clock, Context, Duration, Effect, Layer } from "effect"
import { checkQueueName, checkSchemaName } from "./internal/api/validation.js"
import { findDeadLetterCycle } from "./internal/config.js"
import { drop as dropSchema, reset } from "./internal/store/reset.js"
import { toDatabaseError } from "./internal/store/retryDatabase.js"
import * as Assertions from "./internal/testing/assertions.js"
import * as Pool from "./internal/testing/pglitePool.js"
import * as TestNode from "./internal/testing/testNode.js"
import type * as Job from "./Job.js"
import {
  type DatabaseError,
  type DataDirLocked,
  type EngineNotInstalled,
  InvalidConfig,
  type InvalidSchedule,
  type InvalidTask,
  JobAssertionFailed,
  type SchemaTooNew,
  type TaskAlreadyRegistered,
} from "./JobError.js"
import type { JobState } from "./JobRecord.js"
import * as Jobs from "./Jobs.js"
import { JobsClient } from "./JobsClient.js"
import * as Listener from "./Listener.js"
import * as Schedules from "./Schedules.js"
import type * as Task from "./Task.js"
import * as Tasks from "./Tasks.js"

export type { Enqueued, Match, Part } from "./internal/testing/assertions.js"
export type {
  Cancel,
  Defect,
  Discard,
  Failure,
  Outcome,
  Snooze,
  Success,
  Timeout,
} from "./internal/testing/outcome.js"
export { type PerformError, type PerformOptions, perform } from "./internal/testing/perform.js"
export type { DrainOptions, DrainResult, Mode } from "./internal/testing/testNode.js"

/** The controls of the testing layer. */
export class JobsTest extends Context.Tag("effect-jobs/JobsTest")<
  JobsTest,
  {
    readonly mode: Effect.Effect<TestNode.Mode>
    readonly setMode: (mode: TestNode.Mode) => Effect.Effect<void>
    /** Runs the due jobs of `queue`, one at a time, and counts how each attempt ended. */
    readonly drain: (
      queue: string,
      options?: TestNode.DrainOptions,
    ) => Effect.Effect<TestNode.DrainResult, DatabaseError>
    /** Runs each task that is due by the Clock once, and answers the runs, in the order they started. */
    readonly runTasks: Effect.Effect<ReadonlyArray<Tasks.TaskRun>, DatabaseError>
    readonly node: TestNode.TestNode
  }
>() {}

export interface Options<
  Handlers extends ReadonlyArray<Job.Handler<any>> = ReadonlyArray<Job.Handler<any>>,
  T extends ReadonlyArray<Task.Task> = ReadonlyArray<Task.Task>,
> {
  /** The handlers the jobs run with. A job whose type has none fails with `UnknownJobType`. */
  readonly handlers?: Handlers | undefined
  /**
   * Cron schedules, stored as `Jobs.layer` stores them. A tick that has passed on the Clock
   * becomes a job when the test looks: `drain`, `assertEnqueued`, `refuteEnqueued`, `allEnqueued`;
   * in `inline` mode the job then runs at once, as an inserted one does.
   */
  readonly schedules?: ReadonlyArray<Schedules.CronSchedule> | undefined
  /** Tasks, registered as `Jobs.layer` registers them; they run when due and `runTasks` is called. */
  readonly tasks?: T | undefined
  /**
   * The app's queues, as given to `Jobs.layer`: of their settings only `deadLetter` applies, since
   * the testing layer runs no queues. A job of such a queue that runs out of attempts moves to its
   * dead-letter queue, and `drain` counts it in `deadLettered`.
   */
  readonly queues?: Readonly<Record<string, number | Jobs.QueueConfig<any>>> | undefined
  /** Defaults to `"manual"`. */
  readonly mode?: TestNode.Mode | undefined
  /**
   * `"truncate"` (the default) empties the schema when the layer is built: for a database of
   * the test's own (`pglite()` per test) or tests that run one after another. `"schema"` gives
   * the layer a new schema, dropped when it closes: for a PostgreSQL server that test files
   * share while they run in parallel.
   */
  readonly isolation?: "truncate" | "schema" | undefined
  /** The schema of the jobs tables with `isolation: "truncate"`. Defaults to `"effect_jobs_test"`. */
  readonly schema?: string | undefined
  /** The largest encoded args accepted by insert, in bytes. Defaults to 1 MiB. */
  readonly maxPayloadBytes?: number | undefined
}

/** The schema the testing layer and `pglite()` use unless told otherwise. */
export const defaultSchema = "effect_jobs_test"

export type LayerError =
  | DatabaseError
  | InvalidConfig
  | SchemaTooNew
  | InvalidSchedule
  | InvalidTask
  | TaskAlreadyRegistered

/** Each queue's dead-letter queue, checked: a queue name, and no queue leads back to itself. */
const deadLettersOf = (queues: Options["queues"]) =>
  Effect.gen(function* () {
    const deadLetters = new Map<string, string>()
    for (const [queue, config] of Object.entries(queues ?? {})) {
      const deadLetter = typeof config === "number" ? undefined : config.deadLetter
      if (deadLetter === undefined) continue
      yield* checkQueueName(deadLetter).pipe(
        Effect.mapError(
          (error) =>
            new InvalidConfig({
              option: `queues.${queue}.deadLetter`,
              value: JSON.stringify(deadLetter),
              reason: error.message,
            }),
        ),
      )
      deadLetters.set(queue, deadLetter)
    }
    const cycle = findDeadLetterCycle(deadLetters)
    if (cycle !== undefined) {
      const start = cycle[0]!
      return yield* new InvalidConfig({
        option: `queues.${start}.deadLetter`,
        value: JSON.stringify(deadLetters.get(start)),
        reason: `dead-letter queues lead from "${start}" back to "${cycle[cycle.length - 1]}": a job would move between them forever`,
      })
    }
    return deadLetters
  })

type Provided = Jobs.Jobs | JobsClient | Schedules.Schedules | Tasks.Tasks | JobsTest

/**
 * `Jobs`, `JobsClient`, `Schedules`, `Tasks` and `JobsTest` over the app's `SqlClient`, in a
 * schema emptied for the test.
 */
export const layer = <
  const H extends ReadonlyArray<Job.Handler<any>> = readonly [],
  const T extends ReadonlyArray<Task.Task> = readonly [],
>(
  options: Options<H, T> = {},
): Layer.Layer<
  Provided,
  LayerError,
  SqlClient | Exclude<Jobs.HandlersContext<H> | Task.Context<T>, Provided>
> =>
  Layer.scopedContext(
    Effect.gen(function* () {
      const sql = yield* SqlClientTag
      const fresh = options.isolation === "schema"
      const schema = fresh
        ? `effect_jobs_test_${randomUUID().replaceAll("-", "").slice(0, 16)}`
        : (options.schema ?? defaultSchema)
      yield* checkSchemaName(schema).pipe(
        Effect.mapError(
          (error) => new InvalidConfig({ option: "schema", value: schema, reason: error.message }),
        ),
      )
      const deadLetters = yield* deadLettersOf(options.queues)
      if (fresh) {
        yield* Effect.addFinalizer(() => Effect.ignore(dropSchema(sql, schema)))
      }
      const node = yield* TestNode.make({
        handlers: options.handlers ?? [],
        mode: options.mode ?? "manual",
        schema,
        maxPayloadBytes: options.maxPayloadBytes ?? 1024 * 1024,
        deadLetters,
      })
      if (!fresh) yield* reset(sql, schema).pipe(Effect.mapError(toDatabaseError("emptying the jobs schema")))
      yield* node.declare(options.schedules ?? [], options.tasks ?? [])
      const test: JobsTest["Type"] = {
        mode: node.mode,
        setMode: node.setMode,
        drain: node.drain,
        runTasks: node.runTasks,
        node,
      }
      return Context.make(Jobs.Jobs, node.jobs).pipe(
        Context.add(JobsClient, node.client),
        Context.add(Schedules.Schedules, node.schedules),
        Context.add(Tasks.Tasks, node.tasks),
        Context.add(JobsTest, test),
      )
    }),
  )

/**
 * An embedded PGlite database in memory, opened from an image of `schema` already migrated
 * (made once, by the first layer that needs it, and kept in the system's temporary directory).
 * When the layer closes, the database is put back as the image left it and kept for the next
 * `pglite()` of the process for a second: under vitest's `isolate: false` the next test file
 * of a worker takes it instead of starting PGlite again.
 */
export const pglite = (
  schema: string = defaultSchema,
): Layer.Layer<
  SqlClient | Listener.Listener,
  SqlError | DataDirLocked | EngineNotInstalled | DatabaseError | SchemaTooNew
> =>
  Layer.scopedContext(
    Effect.map(Pool.acquire(schema), ({ client, listen }) =>
      Context.make(SqlClientTag, client).pipe(
        Context.add(Listener.Listener, Listener.make("pglite", listen)),
      ),
    ),
  )

/** Switches between `manual` and `inline` within a test. */
export const setMode = (mode: TestNode.Mode): Effect.Effect<void, never, JobsTest> =>
  Effect.flatMap(JobsTest, (test) => test.setMode(mode))

/** Runs `effect` in `mode`, then goes back to the mode before. */
export const withMode = <A, E, R>(
  mode: TestNode.Mode,
  effect: Effect.Effect<A, E, R>,
): Effect.Effect<A, E, R | JobsTest> =>
  Effect.flatMap(JobsTest, (test) =>
    Effect.acquireUseRelease(
      Effect.zipLeft(test.mode, test.setMode(mode)),
      () => effect,
      (before) => test.setMode(before),
    ),
  )

/**
 * Runs the jobs of `queue` that are due by the Clock (and more, as the options say), one at a
 * time in the test's fiber, and answers how many attempts ended each way.
 */
export const drain = (
  queue: string,
  options?: TestNode.DrainOptions,
): Effect.Effect<TestNode.DrainResult, DatabaseError, JobsTest> =>
  Effect.flatMap(JobsTest, (test) => test.drain(queue, options))

/** Runs each task that is due by the Clock once, in the test's fiber, and answers the runs. */
export const runTasks: Effect.Effect<ReadonlyArray<Tasks.TaskRun>, DatabaseError, JobsTest> = Effect.flatMap(
  JobsTest,
  (test) => test.runTasks,
)

export interface WaitOptions {
  /**
   * Keep looking this long (real time, whatever the Clock) for a job another fiber is about to
   * insert. Defaults to not waiting.
   */
  readonly wait?: Duration.DurationInput | undefined
}

/** Waits on a real timer: jobs that another fiber inserts come in real time, also on the TestClock. */
const realSleep = (millis: number) =>
  Effect.async<void>((resume) => {
    const timer = setTimeout(() => resume(Effect.void), millis)
    return Effect.sync(() => clearTimeout(timer))
  })

const findMatching = <D extends Job.Definition>(definition: D, match: Assertions.Match<Job.Args<D>>) =>
  Effect.gen(function* () {
    const test = yield* JobsTest
    const now = yield* Clock.currentTimeMillis
    const ofType = yield* test.node.jobsOf(definition.type, undefined)
    const decoded = ofType.flatMap((job) => {
      const enqueued = Assertions.decode<Job.Args<D>>(definition, job)
      return enqueued === undefined ? [] : [enqueued]
    })
    const matching = decoded.filter((job) => Assertions.mismatch(match, job, now) === undefined)
    const candidates = ofType.filter((job) =>
      Assertions.statesOf(match as Assertions.Match<unknown>).includes(job.state),
    )
    return { matching, ofType, candidates }
  })

/** Checks until `holds` says yes or the wait is over; answers the last look. */
const lookFor = <D extends Job.Definition, _A>(
  definition: D,
  match: Assertions.Match<Job.Args<D>>,
  wait: Duration.DurationInput | undefined,
  holds: (found: Effect.Effect.Success<ReturnType<typeof findMatching<D>>>) => boolean,
) =>
  Effect.gen(function* () {
    const deadline = Date.now() + (wait === undefined ? 0 : Duration.toMillis(wait))
    while (true) {
      const found = yield* findMatching(definition, match)
      if (holds(found) || Date.now() >= deadline) return found
      yield* realSleep(10)
    }
  })

const failure = (lines: ReadonlyArray<string>) => new JobAssertionFailed({ message: lines.join("\n") })

const describeOthers = (
  definition: Job.Definition,
  found: { readonly ofType: ReadonlyArray<import("./JobRecord.js").JobRecord> },
) => Assertions.listJobs(`"${definition.type}" jobs in the database`, found.ofType)

/**
 * Succeeds with the first job of `definition` that matches (args decoded and matched in part,
 * and the other fields given), among the waiting ones unless `state` says otherwise; fails
 * with `JobAssertionFailed` listing the jobs of the type that are there.
 */
export const assertEnqueued = <D extends Job.Definition>(
  definition: D,
  match: Assertions.Match<Job.Args<D>> = {},
  options: WaitOptions = {},
): Effect.Effect<Assertions.Enqueued<Job.Args<D>>, JobAssertionFailed | DatabaseError, JobsTest> =>
  Effect.flatMap(
    lookFor(definition, match, options.wait, (found) => found.matching.length > 0),
    (found) =>
      found.matching.length > 0
        ? Effect.succeed(found.matching[0]!)
        : Effect.fail(
            failure([
              `Expected a "${definition.type}" job with ${Assertions.describeMatch(match as Assertions.Match<unknown>)}${options.wait === undefined ? "" : ` within ${Duration.format(Duration.decode(options.wait))}`}, but none matched.`,
              describeOthers(definition, found),
            ]),
          ),
  )

/** Fails with `JobAssertionFailed`, listing them, when jobs of `definition` match; succeeds otherwise. */
export const refuteEnqueued = <D extends Job.Definition>(
  definition: D,
  match: Assertions.Match<Job.Args<D>> = {},
  options: WaitOptions = {},
): Effect.Effect<void, JobAssertionFailed | DatabaseError, JobsTest> =>
  Effect.flatMap(
    lookFor(definition, match, options.wait, (found) => found.matching.length > 0),
    (found) =>
      found.matching.length === 0
        ? Effect.void
        : Effect.fail(
            failure([
              `Expected no "${definition.type}" job with ${Assertions.describeMatch(match as Assertions.Match<unknown>)}, but ${found.matching.length} matched.`,
              Assertions.listJobs("Matching", found.matching as never),
            ]),
          ),
  )

/** Every job of `definition` that matches, oldest first, args decoded. */
export const allEnqueued = <D extends Job.Definition>(
  definition: D,
  match: Assertions.Match<Job.Args<D>> = {},
): Effect.Effect<ReadonlyArray<Assertions.Enqueued<Job.Args<D>>>, DatabaseError, JobsTest> =>
  Effect.map(findMatching(definition, match), (found) => [...found.matching].sort((a, b) => a.id - b.id))

export type { JobState }
