/**
 * The operations on stored jobs that need no queue running here: insert, read, manage, and
 * the cluster-wide queue controls. `Jobs` (a worker node) and `JobsClient` (a producer that
 * joins no cluster) both serve them from here; a worker passes `LocalNode` hooks so its own
 * queues and events follow at once, a client passes `remote`.
 */
import { TransactionConnection } from "@effect/sql/SqlClient"
import { Clock, Duration, Effect, Option, Schema } from "effect"
import type * as Job from "../../Job.js"
import { type InvalidJobOptions, JobNotFound, JobStateConflict } from "../../JobError.js"
import { type JobId, type JobRecord, JobState } from "../../JobRecord.js"
import type * as Schedules from "../../Schedules.js"
import * as Unique from "../../Unique.js"
import type * as CronEnqueuer from "../maintenance/cronEnqueuer.js"
import { toDatabaseError } from "../store/retryDatabase.js"
import type * as Store from "../store/store.js"
import * as TaskControl from "../tasks/control.js"
import * as TaskReads from "../tasks/reads.js"
import { messagingSystem } from "../tracing/attemptSpan.js"
import { withTraceContext } from "../tracing/traceContext.js"
import * as Listing from "./listing.js"
import * as QueueAdmin from "./queueAdmin.js"
import type * as Jobs from "./service.js"
import { announceCancel, signal } from "./signals.js"
import * as Throughput from "./throughput.js"
import {
  checkMeta,
  checkQueueName,
  checkWholeNumber,
  encodeArgs,
  invalid,
  maxInt,
  maxSmallint,
  minSmallint,
  scheduleTime,
} from "./validation.js"

/** What a worker node does at once, here, when the cluster-wide operations change something. */
export interface LocalNode {
  /** This node's name; undefined in a process that runs no queue. */
  readonly node?: string | undefined
  /** Told of inserted jobs, for the events. */
  readonly inserted: (records: ReadonlyArray<JobRecord>) => void
  /**
   * Told of jobs inserted inside the app's transaction `transaction`, to announce once it
   * commits; without it, such jobs are not announced.
   */
  readonly insertedInTransaction?:
    | ((transaction: string, records: ReadonlyArray<JobRecord>) => void)
    | undefined
  /** Told of cancelled jobs, for the events. */
  readonly cancelled: (record: JobRecord, at: number) => void
  /** Wakes the queue if it runs here, a hop sooner than the notification its insert sends. */
  readonly wake: (batch: Store.NewJobs) => Effect.Effect<void>
  /** Interrupts the job if it runs here. */
  readonly interrupt: (id: JobId) => Effect.Effect<void>
  /**
   * Follows the queue's stored state here without waiting for the change's own notification.
   * Following, not applying the change, records what was read: the notification then finds
   * nothing new, and cannot undo a change made here alone in between.
   */
  readonly queueChanged: (name: string) => Effect.Effect<void>
  /** The queue as it runs here, or undefined when it does not. */
  readonly status: (
    name: string,
  ) => Effect.Effect<
    { readonly limit: number; readonly running: number; readonly paused: boolean } | undefined
  >
}

/** A process that runs no queue: nothing to do here. */
export const remote: LocalNode = {
  inserted: () => {},
  cancelled: () => {},
  wake: () => Effect.void,
  interrupt: () => Effect.void,
  queueChanged: () => Effect.void,
  status: () => Effect.succeed(undefined),
}

export interface ApiEnvironment {
  readonly store: Store.Store
  readonly maxPayloadBytes: number
  /** A node silent for this long is not listed by `nodes`. */
  readonly nodeTimeoutMillis: number
  readonly local: LocalNode
  /** Retention where a queue has none of its own, for `pruneQueue`. Defaults to `PruneConfig`'s defaults. */
  readonly retention?: QueueAdmin.Retention | undefined
  /** Rows deleted per statement by `pruneQueue` and `deleteQueue`. Defaults to 10,000. */
  readonly batchSize?: number | undefined
}

/** A copy: one stored job may answer several inserts of a batch, with different flags. */
export const withConflict = (record: JobRecord, conflict: boolean): Jobs.InsertedJob =>
  Object.assign(Object.create(Object.getPrototypeOf(record)), record, { conflict })

const checkResourceId = (resourceId: string): Effect.Effect<void, InvalidJobOptions> =>
  typeof resourceId === "string" && resourceId.length > 0 && resourceId.length <= 256
    ? Effect.void
    : Effect.fail(
        invalid(`a resource id must be a string of 1 to 256 characters, got ${JSON.stringify(resourceId)}`),
      )

/** A resource definition's jobs each name their resource; other jobs name none. */
export const checkResource = (definition: Job.Definition, resourceId: string | undefined) => {
  if (definition.resource === undefined) {
    return resourceId === undefined
      ? Effect.succeed(undefined)
      : Effect.fail(
          invalid(
            `job type "${definition.type}" declares no resource type, so its jobs cannot be given a resource`,
          ),
        )
  }
  if (resourceId === undefined) {
    return Effect.fail(
      invalid(
        `job type "${definition.type}" is aimed at a "${definition.resource}": give the ${definition.resource}'s id as the resource option`,
      ),
    )
  }
  return Effect.as(checkResourceId(resourceId), { type: definition.resource as string, id: resourceId })
}

const checkUnique = (unique: Unique.Options<any>): Effect.Effect<void, InvalidJobOptions> =>
  Effect.gen(function* () {
    if (unique.period !== undefined && Duration.toMillis(unique.period) <= 0) {
      return yield* invalid("unique.period must be longer than zero")
    }
    for (const state of unique.states ?? []) {
      if (!Schema.is(JobState)(state))
        return yield* invalid(`unknown job state ${JSON.stringify(state)} in unique.states`)
    }
    // A job moves through these states by itself (retries, snoozes, staging): a key that
    // blocked in some of them but not others would collide with itself along the way.
    const missing = Unique.requiredStates.filter(
      (state) => !(unique.states ?? Unique.defaultStates).includes(state),
    )
    if (missing.length > 0) {
      return yield* invalid(
        `unique.states must include ${Unique.requiredStates.join(", ")}; it lacks ${missing.join(", ")}`,
      )
    }
  })

// The service's spans leave out their stack trace: the frame it would record is this
// file, never the app's call, and taking it is a large share of a short insert's work.
export const traced = (name: string, attributes?: Record<string, unknown>) =>
  Effect.withSpan(name, { attributes, captureStackTrace: false })

/**
 * The producer span of an insert, after OpenTelemetry's messaging conventions: one per
 * `insert` or `insertMany`, the latter with its batch count. The jobs store its context.
 */
const sendSpan = (queue: string, type: string, batchCount: number | undefined) =>
  Effect.withSpan(`send ${queue}`, {
    kind: "producer",
    captureStackTrace: false,
    attributes: {
      "messaging.system": messagingSystem,
      "messaging.operation.type": "send",
      "messaging.operation.name": "send",
      "messaging.destination.name": queue,
      "job.type": type,
      ...(batchCount === undefined ? {} : { "messaging.batch.message_count": batchCount }),
    },
  })

const mustExist = <A>(id: number, value: A | undefined) =>
  value === undefined ? Effect.fail(new JobNotFound({ id })) : Effect.succeed(value)

/** Inserting: checks, encodes, one statement, then the local hooks. */
const makeInsert = (env: ApiEnvironment) => {
  const { store, local } = env
  const prepare = <D extends Job.Definition>(
    definition: D,
    argsList: ReadonlyArray<Job.Args<D>>,
    insertOptions: Jobs.InsertOptions,
  ) =>
    Effect.gen(function* () {
      const queue = insertOptions.queue ?? definition.queue
      const priority = insertOptions.priority ?? definition.priority
      const maxAttempts = insertOptions.maxAttempts ?? definition.maxAttempts
      yield* checkQueueName(queue)
      yield* checkWholeNumber("priority", priority, minSmallint, maxSmallint)
      yield* checkWholeNumber("maxAttempts", maxAttempts, 1, maxInt)
      const resource = yield* checkResource(definition, insertOptions.resource)
      yield* checkMeta(insertOptions.meta)
      const meta = yield* withTraceContext(insertOptions.meta)
      // When a job is due and which unique period it falls in are compared by other nodes,
      // so they come from the database's clock; a job due at once needs no round trip.
      const unique = insertOptions.unique ?? definition.unique
      const now =
        insertOptions.scheduleIn !== undefined ||
        insertOptions.scheduleAt !== undefined ||
        unique?.period !== undefined
          ? (yield* store.now.pipe(Effect.mapError(toDatabaseError("reading the database's time")))).getTime()
          : yield* Clock.currentTimeMillis
      const scheduledAt = yield* scheduleTime(insertOptions, now)
      const state = scheduledAt > now ? ("scheduled" as const) : ("available" as const)
      const { args, argsJson } = yield* encodeArgs(definition, argsList, env.maxPayloadBytes)
      const batch: Store.NewJobs = {
        queue,
        type: definition.type,
        state,
        priority,
        maxAttempts,
        meta,
        scheduledAt: new Date(scheduledAt),
        args,
        argsJson,
        resource,
      }
      return { batch, now: new Date(now) }
    })

  /** Announces inserted jobs: at once, or, inside the app's transaction, once it commits. */
  const announce = (records: ReadonlyArray<JobRecord>) => {
    const inTransaction = local.insertedInTransaction
    if (inTransaction === undefined) return Effect.sync(() => local.inserted(records))
    return Effect.flatMap(Effect.serviceOption(TransactionConnection), (transaction) =>
      Option.isNone(transaction)
        ? Effect.sync(() => local.inserted(records))
        : Effect.map(
            store.currentTransaction.pipe(
              Effect.mapError(toDatabaseError("reading the insert's transaction")),
            ),
            (id) => inTransaction(id, records),
          ),
    )
  }

  // The insert trigger notifies every node of available jobs when the transaction commits;
  // `local.wake` only gets a queue running here going a hop sooner.
  return <D extends Job.Definition>(
    definition: D,
    argsList: ReadonlyArray<Job.Args<D>>,
    insertOptions: Jobs.InsertOptions = {},
  ) =>
    Effect.gen(function* () {
      const { batch, now } = yield* prepare(definition, argsList, insertOptions)
      const unique = insertOptions.unique ?? definition.unique
      if (unique === undefined) {
        const records = yield* store
          .insert(batch, now)
          .pipe(Effect.mapError(toDatabaseError("inserting jobs")))
        yield* announce(records)
        yield* local.wake(batch)
        // Fresh records, one per job: flagging them in place is safe (and, all of one shape,
        // much cheaper than copying thousands of them).
        for (const record of records) (record as { conflict?: boolean }).conflict = false
        return records as ReadonlyArray<Jobs.InsertedJob>
      }
      yield* checkUnique(unique)
      const keys = batch.args.map((args) => Unique.key(unique, batch.type, batch.queue, args, now.getTime()))
      const results = yield* store
        .insertUnique(batch, keys, unique.states ?? Unique.defaultStates, now)
        .pipe(Effect.mapError(toDatabaseError("inserting unique jobs")))
      yield* announce(results.flatMap((r) => (r.conflict ? [] : [r.record])))
      yield* local.wake(batch)
      return results.map(({ record, conflict }) => withConflict(record, conflict))
    })
}

/** Cancel, retry and delete of one job. */
const makeJobAdmin = (env: ApiEnvironment) => {
  const { store, local } = env
  const cancel = (id: JobId | number) =>
    Effect.gen(function* () {
      const now = new Date(yield* Clock.currentTimeMillis)
      const result = yield* mustExist(
        id,
        yield* store.cancel(id, now).pipe(Effect.mapError(toDatabaseError("cancelling a job"))),
      )
      if (!result.changed) {
        return yield* new JobStateConflict({ id, state: result.record.state, operation: "cancel" })
      }
      yield* announceCancel(store, local, result.record, result.previous, now.getTime())
      return result.record
    }).pipe(traced("Jobs.cancel", { "job.id": id }))
  const retry = (id: JobId | number) =>
    Effect.gen(function* () {
      const now = new Date(yield* Clock.currentTimeMillis)
      const result = yield* mustExist(
        id,
        yield* store.retry(id, now).pipe(
          Effect.mapError((error) =>
            (error.cause as { code?: unknown } | undefined)?.code === "23505"
              ? new JobStateConflict({
                  id,
                  state: "unique, and another job holds its key",
                  operation: "retry",
                })
              : toDatabaseError("retrying a job")(error),
          ),
        ),
      )
      if (!result.changed) {
        return yield* new JobStateConflict({ id, state: result.record.state, operation: "retry" })
      }
      yield* signal(store, { kind: "insert", queue: result.record.queue }, "waking the queue")
      return result.record
    }).pipe(traced("Jobs.retry", { "job.id": id }))
  const remove = (id: JobId | number) =>
    Effect.gen(function* () {
      const result = yield* mustExist(
        id,
        yield* store.remove(id).pipe(Effect.mapError(toDatabaseError("deleting a job"))),
      )
      if (!result.deleted)
        return yield* new JobStateConflict({ id, state: result.state, operation: "delete" })
    }).pipe(traced("Jobs.delete", { "job.id": id }))
  return { cancel, retry, delete: remove }
}

/** The operations shared by `Jobs` and `JobsClient`. */
export const make = (env: ApiEnvironment): Jobs.JobsClientService => {
  const { store } = env
  const insertMany = makeInsert(env)
  const listing = Listing.make(env)
  // The types require `resource` of a resource definition's inserts; untyped callers meet
  // the run-time check, so the implementation takes the options as plain.
  return {
    insert: (definition: Job.Definition, args: unknown, insertOptions?: Jobs.InsertOptions) =>
      insertMany(definition, [args], insertOptions).pipe(
        Effect.map((records) => records[0]!),
        Effect.tap((record) => Effect.annotateCurrentSpan("messaging.message.id", String(record.id))),
        sendSpan(insertOptions?.queue ?? definition.queue, definition.type, undefined),
      ),
    insertMany: (
      definition: Job.Definition,
      argsList: ReadonlyArray<unknown>,
      insertOptions?: Jobs.InsertOptions,
    ) =>
      insertMany(definition, argsList, insertOptions).pipe(
        sendSpan(insertOptions?.queue ?? definition.queue, definition.type, argsList.length),
      ),
    get: ((id: JobId | number, definition?: Job.Definition) =>
      store.get(id).pipe(
        Effect.mapError(toDatabaseError("reading a job")),
        Effect.flatMap((record) => mustExist(id, record)),
        Effect.flatMap((record) =>
          definition === undefined ? Effect.succeed(record) : Listing.decodeRecord(record, definition),
        ),
        traced("Jobs.get"),
      )) as Jobs.JobsAdmin["get"],
    list: listing.list as Jobs.JobsAdmin["list"],
    listPage: listing.listPage as Jobs.JobsAdmin["listPage"],
    count: listing.count,
    cancelAll: listing.cancelAll,
    retryAll: listing.retryAll,
    discardAll: listing.discardAll,
    deleteAll: listing.deleteAll,
    failureGroups: listing.failureGroups,
    ...makeJobAdmin(env),
    ...QueueAdmin.make({
      store,
      nodeTimeoutMillis: env.nodeTimeoutMillis,
      local: env.local,
      retention: env.retention ?? QueueAdmin.defaultRetention,
      batchSize: env.batchSize ?? 10_000,
    }),
    // Both judge times other nodes wrote, so by the database's clock.
    leader: store.leader.pipe(Effect.mapError(toDatabaseError("reading the leader"))),
    nodes: store.nodes(env.nodeTimeoutMillis).pipe(Effect.mapError(toDatabaseError("listing nodes"))),
    throughput: (window) => Throughput.throughput(store, window),
    ...makeResourceAdmin(env),
    ...taskReads(env),
  }
}

/** The stored tasks, their history and their cluster-wide controls, as the task manager has them. */
const taskReads = (env: ApiEnvironment) => {
  const { stats, history } = TaskReads.make(env.store, env.nodeTimeoutMillis)
  const controls = TaskControl.make(env.store, env.nodeTimeoutMillis)
  return {
    taskStats: stats,
    taskHistory: history,
    requestTaskRun: controls.requestRun,
    pauseTask: controls.pause,
    resumeTask: controls.resume,
  }
}

/** The unfinished jobs aimed at one resource. */
const makeResourceAdmin = (env: ApiEnvironment) => {
  const { store, local } = env
  return {
    resourceJobs: (resourceType: string, resourceId: string) =>
      store
        .resourceJobs(resourceType, resourceId)
        .pipe(Effect.mapError(toDatabaseError("listing a resource's jobs")), traced("Jobs.resourceJobs")),
    cancelForResource: (resourceType: string, resourceId: string) =>
      Effect.gen(function* () {
        const now = yield* Clock.currentTimeMillis
        const cancelled = yield* store
          .cancelResource(resourceType, resourceId, new Date(now))
          .pipe(Effect.mapError(toDatabaseError("cancelling a resource's jobs")))
        for (const record of cancelled) local.cancelled(record, now)
        return cancelled
      }).pipe(traced("Jobs.cancelForResource")),
    rescheduleForResource: (resourceType: string, resourceId: string, to: Jobs.RescheduleTo) =>
      Effect.gen(function* () {
        if (to.scheduleAt === undefined && to.scheduleIn === undefined) {
          return yield* invalid("give scheduleIn or scheduleAt to reschedule to")
        }
        const now = yield* Clock.currentTimeMillis
        const at = yield* scheduleTime(to, now)
        return yield* store
          .rescheduleResource(resourceType, resourceId, new Date(at), new Date(now))
          .pipe(Effect.mapError(toDatabaseError("rescheduling a resource's jobs")))
      }).pipe(traced("Jobs.rescheduleForResource")),
  }
}

/** The `Schedules` service over stored schedules: the same for a worker and a client. */
export const schedules = (cron: ReturnType<typeof CronEnqueuer.make>): Schedules.Schedules["Type"] => ({
  add: (schedule) => cron.add(schedule).pipe(traced("Schedules.add")),
  remove: cron.remove,
  pause: cron.pause,
  resume: cron.resume,
  get: cron.get,
  list: cron.list,
  runNow: (name) => cron.runNow(name).pipe(traced("Schedules.runNow")),
})
