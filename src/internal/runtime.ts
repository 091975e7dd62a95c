/**
 * Builds the Jobs service: validates options, migrates, and starts the supervision tree
 * (notifier, queues, scheduler, pruner) in the layer's scope.
 */

import { hostname } from "node:os"
import { SqlClient } from "@effect/sql/SqlClient"
import { Clock, Deferred, Duration, Effect, Fiber, Option, Schema, Scope } from "effect"
import * as Backoff from "../Backoff.js"
import type * as Job from "../Job.js"
import {
  type InvalidJobOptions,
  InvalidSchedule,
  JobNotFound,
  JobStateConflict,
  NodeNameInUse,
  QueueAlreadyRunning,
  QueueNotFound,
  type SupervisorEscalation,
  TaskAlreadyRegistered,
} from "../JobError.js"
import { type JobId, type JobRecord, JobState } from "../JobRecord.js"
import type * as Jobs from "../Jobs.js"
import { Listener } from "../Listener.js"
import type * as Schedules from "../Schedules.js"
import type * as Task from "../Task.js"
import * as Unique from "../Unique.js"
import * as Completer from "./completer.js"
import * as RuntimeConfig from "./config.js"
import * as Cron from "./cron.js"
import * as Leadership from "./leadership.js"
import * as Maintenance from "./maintenance.js"
import { migrate } from "./migrations.js"
import * as Notifier from "./notifier.js"
import * as Observer from "./observer.js"
import { PreparedStatements } from "./prepared.js"
import * as QueueRunner from "./queueRunner.js"
import { retryDatabase, toDatabaseError } from "./retryDatabase.js"
import * as Store from "./store.js"
import { forkSupervised } from "./supervisor.js"
import * as TaskManager from "./tasks.js"
import {
  checkQueueName,
  checkWholeNumber,
  encodeArgs,
  invalid,
  maxInt,
  maxSmallint,
  scheduleTime,
} from "./validation.js"

/** A copy: one stored job may answer several inserts of a batch, with different flags. */
const withConflict = (record: JobRecord, conflict: boolean): Jobs.InsertedJob =>
  Object.assign(Object.create(Object.getPrototypeOf(record)), record, { conflict })

const checkDeadLetterCycles = (
  queues: ReadonlyMap<string, Jobs.QueueConfig>,
): Effect.Effect<void, InvalidJobOptions> => {
  const cycle = RuntimeConfig.deadLetterCycle(queues)
  return cycle === undefined ? Effect.void : Effect.fail(invalid(cycle))
}

const checkResourceId = (resourceId: string): Effect.Effect<void, InvalidJobOptions> =>
  typeof resourceId === "string" && resourceId.length > 0 && resourceId.length <= 256
    ? Effect.void
    : Effect.fail(
        invalid(`a resource id must be a string of 1 to 256 characters, got ${JSON.stringify(resourceId)}`),
      )

/** A resource definition's jobs each name their resource; other jobs name none. */
const checkResource = (definition: Job.Definition, resourceId: string | undefined) => {
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

export const make = <H extends ReadonlyArray<Job.Handler<any>>, T extends ReadonlyArray<Task.Task>>(
  options: Jobs.Options<H, T>,
) =>
  Effect.gen(function* () {
    const config = yield* RuntimeConfig.decode(options)
    const { schema, handlers, node, maxPayloadBytes, pollInterval, stageInterval, shutdownTimeout, tracing } =
      config
    const queueConfigs = config.queues
    const restartPolicy = config.restartPolicy

    const sql = yield* SqlClient
    const listener = yield* Listener
    const handlerContext = yield* Effect.context<any>()
    // The app's SqlClient may rename columns or parse JSON for its own rows; ours are read as stored.
    const plainSql = sql.withoutTransforms()
    const prepared = yield* Effect.serviceOption(PreparedStatements)
    // A retention of zero for completed jobs: a completion deletes its job instead of keeping it.
    const keepCompleted = config.prune === false || !Duration.isZero(config.prune.completed)
    const store = Store.make(plainSql, schema, Option.getOrUndefined(prepared), keepCompleted)

    yield* migrate(sql, schema).pipe(
      Effect.catchTag("SqlError", (e) => toDatabaseError("migrating the jobs schema")(e)),
    )

    const observer = yield* Observer.make(config.eventsCapacity)
    const cron = Cron.make({ sql: plainSql, schema, store, maxPayloadBytes, onInserted: observer.inserted })
    const declared = new Set<string>()
    for (const schedule of config.schedules) {
      if (declared.has(schedule.name)) {
        return yield* new InvalidSchedule({
          schedule: schedule.name,
          reason: "two schedules are declared with this name",
        })
      }
      declared.add(schedule.name)
      yield* cron.prepare(schedule)
    }
    for (const schedule of config.schedules) yield* cron.add(schedule)

    const layerScope = yield* Effect.scope
    const failure = yield* Deferred.make<never, SupervisorEscalation>()
    const root = yield* Effect.withFiberRuntime<Fiber.RuntimeFiber<unknown, unknown>>((fiber) =>
      Effect.succeed(fiber),
    )
    // A child that exhausted its restarts takes the runtime down, as an OTP supervisor does:
    // the app hears of it through `awaitFailure` and through the interruption of its main fiber.
    const escalate = (error: SupervisorEscalation) =>
      Effect.zipRight(Deferred.fail(failure, error), Effect.asVoid(Fiber.interruptAsFork(root, root.id())))
    const supervised = <E, R>(name: string, child: Effect.Effect<unknown, E, R>) =>
      forkSupervised(name, child, restartPolicy, escalate)

    const completer = yield* Completer.make(store, config.completionBatchSize)
    // Registered before the writer fiber, so it runs after the writer stops: the last outcomes,
    // including jobs released at shutdown, are written before the database goes away.
    yield* Effect.addFinalizer(() => completer.flushRemaining)
    yield* supervised("completer", completer.run)

    const runners = new Map<
      string,
      { runner: QueueRunner.QueueRunner; scope: Scope.CloseableScope; config: Jobs.QueueConfig }
    >()
    const environment: QueueRunner.RunnerEnvironment = {
      store,
      completer,
      observer,
      node,
      handlers,
    }

    // Queues paused through the cluster (not by this node's own config or a localOnly call):
    // the ones a cluster-wide resume may resume.
    const clusterPaused = new Set<string>()
    const listening = yield* Deferred.make<void>()
    // After (re)connecting, signals sent meanwhile were lost: wake every queue, and bring
    // pauses in line with the stored state.
    const resync = Effect.suspend(() =>
      Effect.forEach(
        Array.from(runners),
        ([name, { runner }]) =>
          Effect.gen(function* () {
            const paused = yield* Effect.orElseSucceed(store.isPaused(name), () => undefined)
            if (paused === true && !clusterPaused.has(name)) {
              clusterPaused.add(name)
              yield* runner.pause
            } else if (paused === false && clusterPaused.delete(name)) {
              yield* runner.resume
            }
            yield* runner.wake
          }),
        { discard: true },
      ),
    )
    const notifier = Notifier.make({
      listener,
      store,
      node,
      pingInterval: config.pingInterval,
      onListening: Effect.zipRight(Deferred.succeed(listening, undefined), resync),
    })
    yield* notifier.subscribe((signal) => {
      switch (signal.kind) {
        case "insert": {
          const entry = runners.get(signal.queue)
          if (!entry) return
          const { priority, at } = signal
          Effect.runSync(
            typeof priority === "number" && typeof at === "number"
              ? entry.runner.wakeAt({ priority, at, id: 0 })
              : entry.runner.wake,
          )
          return
        }
        case "cancel": {
          for (const { runner } of runners.values()) Effect.runFork(runner.interruptJob(signal.id as JobId))
          return
        }
        case "queue": {
          const entry = runners.get(signal.queue)
          if (!entry) return
          if (signal.paused === true) {
            clusterPaused.add(signal.queue)
            Effect.runSync(entry.runner.pause)
          }
          if (signal.paused === false) {
            clusterPaused.delete(signal.queue)
            Effect.runSync(entry.runner.resume)
          }
          if (signal.concurrency !== undefined) Effect.runSync(entry.runner.scale(signal.concurrency))
          return
        }
      }
    })
    yield* supervised("notifier", notifier.run.pipe(retryDatabase("listening for notifications")))
    // Queues start once LISTEN is live, so no signal sent after they read the stored state is
    // missed. A database that cannot LISTEN still gets a runtime, woken by polling only.
    yield* Deferred.await(listening).pipe(
      Effect.timeout("5 seconds"),
      Effect.catchAll(() => Effect.logWarning("LISTEN is not live after 5 seconds; starting queues anyway")),
    )

    const startRunner = (name: string, config: Jobs.QueueConfig) =>
      Effect.gen(function* () {
        // A queue paused cluster-wide starts paused here too.
        const clusterPausedNow = yield* store
          .isPaused(name)
          .pipe(retryDatabase(`reading the state of queue ${name}`))
        if (clusterPausedNow) clusterPaused.add(name)
        const scope = yield* Scope.fork(layerScope, { _tag: "Sequential" } as any)
        const runner = yield* QueueRunner.make(
          {
            name,
            concurrency: config.concurrency,
            paused: (config.paused ?? false) || clusterPausedNow,
            pollInterval: config.pollInterval ? Duration.decode(config.pollInterval) : pollInterval,
            shutdownTimeout,
            tracing,
            deadLetter: config.deadLetter,
            limits:
              config.globalLimit === undefined && config.rateLimit === undefined
                ? undefined
                : {
                    global: config.globalLimit,
                    rate: config.rateLimit && {
                      limit: config.rateLimit.limit,
                      periodMillis: Duration.toMillis(config.rateLimit.period),
                    },
                  },
          },
          environment,
          Backoff.defaultBackoff,
        ).pipe(Scope.extend(scope))
        // Closing the queue's scope stops claiming first, then waits for its jobs.
        yield* Scope.addFinalizer(scope, runner.shutdown)
        yield* supervised(`queue:${name}`, Effect.provide(runner.run, handlerContext)).pipe(
          Scope.extend(scope),
        )
        runners.set(name, { runner, scope, config })
      })

    // The node registers before its queues claim anything: a job is never attributed to a
    // node the rescuer does not know. It leaves the table after its queues have stopped.
    const heartbeatInterval = config.heartbeatInterval
    const nodeTimeout = Duration.toMillis(config.nodeTimeout)
    const startedAt = new Date(yield* Clock.currentTimeMillis)
    const heartbeat = Effect.gen(function* () {
      const now = new Date(yield* Clock.currentTimeMillis)
      yield* store.heartbeat({
        id: node,
        host: hostname(),
        pid: process.pid,
        queues: Array.from(runners.keys()),
        startedAt,
        heartbeatAt: now,
      })
    })
    // Two live processes under one name would hide each other's deaths from the rescuer.
    const registered = yield* store
      .registerNode(
        { id: node, host: hostname(), pid: process.pid, queues: [], startedAt, heartbeatAt: startedAt },
        nodeTimeout,
      )
      .pipe(Effect.mapError(toDatabaseError("registering this node")))
    if (!registered) return yield* new NodeNameInUse({ node })
    const released = yield* store
      .rescueNode(node, startedAt, config.maxRescues)
      .pipe(Effect.mapError(toDatabaseError("releasing the jobs of this node's previous process")))
    if (released.length > 0) {
      yield* Effect.logWarning(
        `released ${released.length} job(s) left executing by an earlier process named ${node}: ${released.map((r) => `${r.id} → ${r.state}`).join(", ")}`,
      )
    }
    yield* Effect.addFinalizer(() => Effect.ignore(store.forgetNode(node)))
    yield* supervised(
      "heartbeat",
      Effect.forever(
        Effect.zipRight(Effect.sleep(heartbeatInterval), heartbeat.pipe(retryDatabase("heartbeat"))),
      ),
    )

    // Made after the node registers, so a task run here is never attributed to a node the
    // others do not know, and stopped before it leaves (finalizers run last-in, first-out).
    const taskManager = yield* TaskManager.make({
      sql: plainSql,
      schema,
      node,
      nodeTimeoutMillis: nodeTimeout,
      pollInterval,
      historyLimit: config.taskHistory,
    })
    const taskIds = new Set<string>()
    for (const task of config.tasks) {
      if (taskIds.has(task.id)) return yield* new TaskAlreadyRegistered({ task: task.id })
      taskIds.add(task.id)
      yield* taskManager.prepare(task)
    }
    for (const task of config.tasks) yield* taskManager.service.register(task)
    yield* supervised("tasks", taskManager.run)

    for (const [name, config] of queueConfigs) yield* startRunner(name, config)
    yield* Effect.ignore(heartbeat)
    // Stop queues before anything else at shutdown (finalizers run last-in, first-out).
    yield* Effect.addFinalizer(() =>
      Effect.forEach(
        runners.values(),
        ({ scope }) => Scope.close(scope, { _tag: "Success", value: undefined } as any),
        {
          concurrency: "unbounded",
          discard: true,
        },
      ),
    )

    const leadership = Leadership.make(store, node, heartbeatInterval)
    yield* Effect.addFinalizer(() => leadership.resign)
    yield* supervised("leadership", leadership.run)
    yield* supervised(
      "rescuer",
      leadership.everyWhileLeading(
        heartbeatInterval,
        Maintenance.rescue(store, config.nodeTimeout, config.maxRescues),
      ),
    )
    yield* supervised("scheduler", leadership.everyWhileLeading(stageInterval, Maintenance.stage(store)))
    yield* supervised("cron", cron.runWhile(leadership.isLeader, stageInterval))
    const prune = config.prune
    if (prune !== false) {
      yield* supervised(
        "pruner",
        leadership.everyWhileLeading(
          prune.interval,
          Maintenance.prune(
            store,
            [
              ["completed", prune.completed],
              ["cancelled", prune.cancelled],
              ["discarded", prune.discarded],
            ],
            prune.batchSize,
          ),
        ),
      )
    }

    const vacuum = config.vacuum
    if (vacuum !== false) {
      yield* supervised(
        "vacuum",
        leadership.everyWhileLeading(vacuum.interval, Effect.asVoid(Maintenance.vacuum(store, vacuum.when))),
      )
    }

    // Cluster-wide unless localOnly: stored, so nodes starting later follow it, and signalled,
    // so running nodes follow it now.
    const setPaused = (name: string, paused: boolean, control: Jobs.QueueControl = {}) =>
      Effect.gen(function* () {
        yield* checkQueueName(name)
        if (control.localOnly) {
          return yield* Effect.flatMap(runnerOf(name), (runner) => (paused ? runner.pause : runner.resume))
        }
        const now = new Date(yield* Clock.currentTimeMillis)
        yield* store
          .setPaused(name, paused, now)
          .pipe(Effect.mapError(toDatabaseError("storing the queue state")))
        yield* notifier
          .send({ kind: "queue", queue: name, paused })
          .pipe(Effect.mapError(toDatabaseError("signalling the queue state")))
        if (paused) clusterPaused.add(name)
        else clusterPaused.delete(name)
        const entry = runners.get(name)
        if (entry) yield* paused ? entry.runner.pause : entry.runner.resume
      })

    const runnerOf = (name: string) =>
      Option.match(Option.fromNullable(runners.get(name)), {
        onNone: () => Effect.fail(new QueueNotFound({ queue: name })),
        onSome: ({ runner }) => Effect.succeed(runner),
      })

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
        yield* checkWholeNumber("priority", priority, 0, maxSmallint)
        yield* checkWholeNumber("maxAttempts", maxAttempts, 1, maxInt)
        const resource = yield* checkResource(definition, insertOptions.resource)
        const now = yield* Clock.currentTimeMillis
        const scheduledAt = yield* scheduleTime(insertOptions, now)
        const state = scheduledAt > now ? ("scheduled" as const) : ("available" as const)
        const { args, argsJson } = yield* encodeArgs(definition, argsList, maxPayloadBytes)
        const batch: Store.NewJobs = {
          queue,
          type: definition.type,
          state,
          priority,
          maxAttempts,
          meta: insertOptions.meta ?? {},
          scheduledAt: new Date(scheduledAt),
          args,
          argsJson,
          resource,
        }
        return { batch, now: new Date(now) }
      })

    // A queue running here is woken as soon as the insert returns, a hop sooner than the
    // NOTIFY its commit sends. Inside a transaction the claim may find nothing yet; the
    // notification after the commit wakes the queue again.
    const wakeLocal = (batch: Store.NewJobs) =>
      Effect.suspend(() => {
        const entry = batch.state === "available" ? runners.get(batch.queue) : undefined
        return entry === undefined
          ? Effect.void
          : entry.runner.wakeAt({ priority: batch.priority, at: batch.scheduledAt.getTime(), id: 0 })
      })

    const insertMany = <D extends Job.Definition>(
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
          observer.inserted(records)
          yield* wakeLocal(batch)
          // Fresh records, one per job: flagging them in place is safe (and, all of one shape,
          // much cheaper than copying thousands of them).
          for (const record of records) (record as { conflict?: boolean }).conflict = false
          return records as ReadonlyArray<Jobs.InsertedJob>
        }
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
        const keys = batch.args.map((args) =>
          Unique.key(unique, batch.type, batch.queue, args, now.getTime()),
        )
        const results = yield* store
          .insertUnique(batch, keys, unique.states ?? Unique.defaultStates, now)
          .pipe(Effect.mapError(toDatabaseError("inserting unique jobs")))
        observer.inserted(results.flatMap((r) => (r.conflict ? [] : [r.record])))
        yield* wakeLocal(batch)
        return results.map(({ record, conflict }) => withConflict(record, conflict))
      })

    const mustExist = <A>(id: number, value: A | undefined) =>
      value === undefined ? Effect.fail(new JobNotFound({ id })) : Effect.succeed(value)

    // The service's spans leave out their stack trace: the frame it would record is this
    // file, never the app's call, and taking it was 6 % of the CPU of back-to-back inserts.
    const traced = (name: string, attributes?: Record<string, unknown>) =>
      Effect.withSpan(name, { attributes, captureStackTrace: false })

    const service: Jobs.Jobs["Type"] = {
      node,
      insert: (definition, args, insertOptions) =>
        insertMany(definition, [args], insertOptions).pipe(
          Effect.map((records) => records[0]!),
          traced("Jobs.insert", { "job.type": definition.type }),
        ),
      insertMany: (definition, argsList, insertOptions) =>
        insertMany(definition, argsList, insertOptions).pipe(
          traced("Jobs.insertMany", { "job.type": definition.type, count: argsList.length }),
        ),
      get: (id) =>
        store.get(id).pipe(
          Effect.mapError(toDatabaseError("reading a job")),
          Effect.flatMap((record) => mustExist(id, record)),
          traced("Jobs.get"),
        ),
      list: (listOptions = {}) =>
        Effect.gen(function* () {
          const limit = listOptions.limit ?? 50
          const offset = listOptions.offset ?? 0
          yield* checkWholeNumber("limit", limit, 1, 1000)
          yield* checkWholeNumber("offset", offset, 0, Number.MAX_SAFE_INTEGER)
          if (listOptions.state !== undefined) {
            const states = typeof listOptions.state === "string" ? [listOptions.state] : listOptions.state
            for (const state of states) {
              if (!Schema.is(JobState)(state))
                return yield* invalid(`unknown job state ${JSON.stringify(state)}`)
            }
          }
          return yield* store
            .list({
              queue: listOptions.queue,
              state: listOptions.state,
              type: listOptions.type,
              limit,
              offset,
            })
            .pipe(Effect.mapError(toDatabaseError("listing jobs")))
        }).pipe(traced("Jobs.list")),
      cancel: (id) =>
        Effect.gen(function* () {
          const now = new Date(yield* Clock.currentTimeMillis)
          const result = yield* mustExist(
            id,
            yield* store.cancel(id, now).pipe(Effect.mapError(toDatabaseError("cancelling a job"))),
          )
          if (!result.changed) {
            return yield* new JobStateConflict({ id, state: result.record.state, operation: "cancel" })
          }
          observer.cancelled(result.record, now.getTime())
          if (result.previous === "executing") {
            // Interrupt it here at once if it runs here, and tell every other node.
            for (const { runner } of runners.values()) yield* runner.interruptJob(result.record.id)
            yield* notifier
              .send({ kind: "cancel", id })
              .pipe(Effect.mapError(toDatabaseError("signalling a cancel")))
          }
          return result.record
        }).pipe(traced("Jobs.cancel", { "job.id": id })),
      retry: (id) =>
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
          yield* notifier
            .send({ kind: "insert", queue: result.record.queue })
            .pipe(Effect.mapError(toDatabaseError("waking the queue")))
          return result.record
        }).pipe(traced("Jobs.retry", { "job.id": id })),
      delete: (id) =>
        Effect.gen(function* () {
          const result = yield* mustExist(
            id,
            yield* store.remove(id).pipe(Effect.mapError(toDatabaseError("deleting a job"))),
          )
          if (!result.deleted)
            return yield* new JobStateConflict({ id, state: result.state, operation: "delete" })
        }).pipe(traced("Jobs.delete", { "job.id": id })),
      events: observer.events,
      subscribe: observer.subscribe,
      startQueue: (name, config) =>
        Effect.gen(function* () {
          const queue = yield* RuntimeConfig.decodeQueue(name, config)
          if (runners.has(name)) return yield* new QueueAlreadyRunning({ queue: name })
          yield* checkDeadLetterCycles(
            new Map([
              ...Array.from(runners, ([other, entry]) => [other, entry.config] as const),
              [name, queue],
            ]),
          )
          yield* startRunner(name, queue)
        }),
      stopQueue: (name) =>
        Effect.gen(function* () {
          const entry = runners.get(name)
          if (!entry) return yield* new QueueNotFound({ queue: name })
          runners.delete(name)
          yield* Scope.close(entry.scope, { _tag: "Success", value: undefined } as any)
          yield* completer.barrier
        }),
      pauseQueue: (name, control) => setPaused(name, true, control),
      resumeQueue: (name, control) => setPaused(name, false, control),
      scaleQueue: (name, concurrency, control = {}) =>
        Effect.gen(function* () {
          yield* checkQueueName(name)
          yield* checkWholeNumber(`concurrency of queue "${name}"`, concurrency, 1, 10_000)
          if (control.localOnly)
            return yield* Effect.flatMap(runnerOf(name), (runner) => runner.scale(concurrency))
          yield* notifier
            .send({ kind: "queue", queue: name, concurrency })
            .pipe(Effect.mapError(toDatabaseError("signalling a scale")))
          // Here at once, without waiting for our own notification.
          const entry = runners.get(name)
          if (entry) yield* entry.runner.scale(concurrency)
        }),
      leader: Effect.flatMap(Clock.currentTimeMillis, (now) =>
        store.leader(new Date(now)).pipe(Effect.mapError(toDatabaseError("reading the leader"))),
      ),
      queueInfo: (name) =>
        Effect.gen(function* () {
          yield* checkQueueName(name).pipe(Effect.mapError(() => new QueueNotFound({ queue: name })))
          const entry = runners.get(name)
          // A queue that does not run here still has jobs to count (an admin-only node, say).
          const status = entry ? yield* entry.runner.status : { name, limit: 0, running: 0, paused: false }
          const summary = yield* store
            .summarize(name)
            .pipe(Effect.mapError(toDatabaseError("summarizing a queue")))
          const states = Object.fromEntries(
            JobState.literals.map((state) => [state, { count: 0, oldest: null, newest: null }]),
          ) as Record<JobState, { count: number; oldest: Date | null; newest: Date | null }>
          for (const row of summary)
            states[row.state] = { count: row.count, oldest: row.oldest, newest: row.newest }
          return { ...status, runningHere: entry !== undefined, states }
        }),
      // Suspended: the map's iterator must be taken afresh on every call.
      queues: Effect.suspend(() =>
        Effect.forEach(Array.from(runners.values()), ({ runner }) => runner.status),
      ),
      drain: (name) =>
        Effect.gen(function* () {
          const runner = yield* runnerOf(name)
          yield* runner.awaitIdle
          yield* completer.barrier
        }),
      flush: (name) =>
        Effect.gen(function* () {
          const runner = yield* runnerOf(name)
          while (
            yield* store.hasDueOrRunning(name).pipe(Effect.mapError(toDatabaseError("checking a queue")))
          ) {
            yield* runner.wake
            yield* Effect.sleep("10 millis")
          }
          yield* completer.barrier
        }),
      awaitFailure: Deferred.await(failure),
      resourceJobs: (resourceType, resourceId) =>
        store
          .resourceJobs(resourceType, resourceId)
          .pipe(Effect.mapError(toDatabaseError("listing a resource's jobs")), traced("Jobs.resourceJobs")),
      cancelForResource: (resourceType, resourceId) =>
        Effect.gen(function* () {
          const now = yield* Clock.currentTimeMillis
          const cancelled = yield* store
            .cancelResource(resourceType, resourceId, new Date(now))
            .pipe(Effect.mapError(toDatabaseError("cancelling a resource's jobs")))
          for (const record of cancelled) observer.cancelled(record, now)
          return cancelled
        }).pipe(traced("Jobs.cancelForResource")),
      rescheduleForResource: (resourceType, resourceId, to) =>
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
      nodes: Effect.gen(function* () {
        const now = yield* Clock.currentTimeMillis
        return yield* store
          .nodes(new Date(now - nodeTimeout))
          .pipe(Effect.mapError(toDatabaseError("listing nodes")))
      }),
    }
    const schedules: Schedules.Schedules["Type"] = {
      add: (schedule) => cron.add(schedule).pipe(traced("Schedules.add")),
      remove: cron.remove,
      pause: cron.pause,
      resume: cron.resume,
      get: cron.get,
      list: cron.list,
    }
    return { jobs: service, schedules, tasks: taskManager.service }
  })

export type { JobRecord }
