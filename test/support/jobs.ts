import { SqlClient } from "@effect/sql/SqlClient"
import { Context, Deferred, Duration, Effect, Layer, Schema, type Scope } from "effect"
import * as Job from "../../src/Job.js"
import type { JobRecord, JobState } from "../../src/JobRecord.js"
import * as Jobs from "../../src/Jobs.js"
import type { Listener } from "../../src/Listener.js"
import * as Schedules from "../../src/Schedules.js"
import type * as Task from "../../src/Task.js"
import * as Tasks from "../../src/Tasks.js"
import { dropSchema, freshSchema } from "./engines.js"

/**
 * Starts a Jobs runtime in a schema of its own, in the current scope. Closing the scope
 * stops it gracefully and drops the schema. Intervals default to short ones so tests are quick.
 */
export const startJobs = <
  const H extends ReadonlyArray<Job.Handler<any>>,
  const T extends ReadonlyArray<Task.Task> = readonly [],
>(
  options: Jobs.Options<H, T> = {},
): Effect.Effect<
  Jobs.Jobs["Type"] & {
    readonly schema: string
    readonly schedules: Schedules.Schedules["Type"]
    readonly tasks: Tasks.Tasks["Type"]
  },
  unknown,
  SqlClient | Listener | Scope.Scope | Jobs.HandlersContext<H> | Task.Context<T>
> =>
  Effect.gen(function* () {
    const sql = yield* SqlClient
    const schema = options.schema ?? freshSchema()
    // A schema the caller named is the caller's to drop (it may want to look at it afterwards).
    if (options.schema === undefined) yield* Effect.addFinalizer(() => dropSchema(sql, schema))
    const scope = yield* Effect.scope
    const context = yield* Layer.buildWithScope(
      Jobs.layer({
        pollInterval: "200 millis",
        stageInterval: "50 millis",
        pingInterval: "1 second",
        shutdownTimeout: "2 seconds",
        ...options,
        schema,
      }),
      scope,
    )
    return Object.assign(Object.create(null), Context.get(context, Jobs.Jobs), {
      schema,
      schedules: Context.get(context, Schedules.Schedules),
      tasks: Context.get(context, Tasks.Tasks),
    })
  }) as any

/**
 * Retries `check` until it succeeds or `timeout` passes. Waits on real timers, so it also
 * works in tests whose Clock is the TestClock.
 */
export const eventually = <A, E, R>(
  check: Effect.Effect<A, E, R>,
  timeout: Duration.DurationInput = "10 seconds",
): Effect.Effect<A, E, R> =>
  Effect.gen(function* () {
    const deadline = Date.now() + Duration.toMillis(timeout)
    while (true) {
      const exit = yield* Effect.exit(check)
      if (exit._tag === "Success" || Date.now() > deadline) return yield* exit
      yield* realSleep(20)
    }
  })

/** Waits `millis` of real time, whatever Clock the test runs with. */
export const realSleep = (millis: number) =>
  Effect.promise(() => new Promise<void>((resolve) => setTimeout(resolve, millis)))

export class NotYet extends Error {}

/** Waits until the job reaches `state` and answers its record. */
export const awaitState = (
  jobs: Pick<Jobs.Jobs["Type"], "get">,
  id: number,
  state: JobState,
  timeout: Duration.DurationInput = "10 seconds",
): Effect.Effect<JobRecord, unknown> =>
  eventually(
    Effect.flatMap(jobs.get(id), (record) =>
      record.state === state
        ? Effect.succeed(record)
        : Effect.fail(new NotYet(`job ${id} is ${record.state}, waiting for ${state}`)),
    ),
    timeout,
  )

/**
 * A job type whose handler signals when it starts, then runs until interrupted and signals
 * that too: for tests of cancels and shutdowns.
 */
export const interruptibleJob = (type: string) =>
  Effect.gen(function* () {
    const started = yield* Deferred.make<void>()
    const interrupted = yield* Deferred.make<void>()
    const definition = Job.make(type, { args: Schema.Struct({}) })
    const handler = definition.handler(() =>
      Deferred.succeed(started, undefined).pipe(
        Effect.zipRight(Effect.never),
        Effect.onInterrupt(() => Deferred.succeed(interrupted, undefined)),
      ),
    )
    return { definition, handler, started, interrupted }
  })
