/**
 * Builds the Jobs service: validates options, migrates, and starts the supervision tree
 * (notifier, queues, scheduler, pruner) in the layer's scope.
 */

import { hostname } from "node:os"
import { SqlClient } from "@effect/sql/SqlClient"
import { Clock, Deferred, Duration, Effect, Fiber, FiberSet, Option, Scope } from "effect"
import * as Backoff from "../Backoff.js"
import type * as Job from "../Job.js"
import {
  type InvalidJobOptions,
  InvalidSchedule,
  NodeNameInUse,
  QueueAlreadyRunning,
  QueueNotFound,
  type SupervisorEscalation,
  TaskAlreadyRegistered,
} from "../JobError.js"
import type { JobId, JobRecord } from "../JobRecord.js"
import type * as Jobs from "../Jobs.js"
import { Listener } from "../Listener.js"
import type * as Task from "../Task.js"
import * as Api from "./api/api.js"
import { checkQueueName, checkWholeNumber, invalid } from "./api/validation.js"
import * as RuntimeConfig from "./config.js"
import * as CronEnqueuer from "./maintenance/cronEnqueuer.js"
import * as Maintenance from "./maintenance/rounds.js"
import * as Leadership from "./node/leadership.js"
import * as Notifier from "./node/notifier.js"
import * as Observer from "./observer.js"
import * as Completer from "./queue/completer.js"
import * as QueueRunner from "./queue/dispatcher.js"
import { migrate } from "./store/migrations.js"
import { PreparedStatements } from "./store/prepared.js"
import { retryDatabase, toDatabaseError } from "./store/retryDatabase.js"
import * as Store from "./store/store.js"
import { forkSupervised } from "./supervisor.js"
import * as TaskManager from "./tasks/taskManager.js"

const checkDeadLetterCycles = (
  queues: ReadonlyMap<string, Jobs.QueueConfig>,
): Effect.Effect<void, InvalidJobOptions> => {
  const cycle = RuntimeConfig.deadLetterCycle(queues)
  return cycle === undefined ? Effect.void : Effect.fail(invalid(cycle))
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
    // The heartbeat and LISTEN pings go through the engine's liveness connection when it has
    // one: handlers that hold every connection of the pool must not make this node look dead.
    const livenessStore =
      listener.liveness === undefined ? store : Store.make(listener.liveness.withoutTransforms(), schema)

    yield* migrate(sql, schema).pipe(
      Effect.catchTag("SqlError", (e) => toDatabaseError("migrating the jobs schema")(e)),
    )

    const observer = yield* Observer.make(config.eventsCapacity)
    const cron = CronEnqueuer.make({
      sql: plainSql,
      schema,
      store,
      maxPayloadBytes,
      onInserted: observer.inserted,
    })
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
    // Closed while this node's own heartbeat is stale (see the heartbeat below).
    const live = yield* Effect.makeLatch(true)
    const environment: QueueRunner.RunnerEnvironment = {
      store,
      completer,
      observer,
      node,
      handlers,
      live: live.await,
    }

    // What this node last read from the store, per queue: a stored change applies here when
    // the value read differs, so a localOnly pause or scale stands until the next stored one.
    const storedConcurrency = new Map<string, number | null>()
    const storedPauseStamps = new Map<string, string | null>()
    const listening = yield* Deferred.make<void>()
    const queueStateLock = yield* Effect.makeSemaphore(1)
    // A queue signal or a reconnect makes the node re-read the queue's stored state and follow
    // it. The signal's own fields are never obeyed: anyone who can connect can send one.
    const followStoredState = (name: string) =>
      Effect.gen(function* () {
        const entry = runners.get(name)
        if (!entry) return
        const stored = yield* store.queueState(name)
        if (stored.pausedOrResumedAt !== storedPauseStamps.get(name)) {
          storedPauseStamps.set(name, stored.pausedOrResumedAt)
          // A cluster-wide resume resumes a queue paused here alone, or started paused, too.
          if (stored.paused) yield* entry.runner.pause
          else if (stored.pausedOrResumedAt !== null) yield* entry.runner.resume
        }
        const concurrency = stored.concurrency
        if (concurrency !== null && concurrency !== storedConcurrency.get(name)) {
          storedConcurrency.set(name, concurrency)
          // The column's check keeps it whole and in range; a value that is not is ignored.
          if (Number.isInteger(concurrency) && concurrency >= 1 && concurrency <= 10_000) {
            yield* entry.runner.scale(concurrency)
          }
        }
      }).pipe(
        queueStateLock.withPermits(1),
        Effect.catchAll((error) =>
          Effect.logWarning(`could not read the stored state of queue ${name}: ${error.message}`),
        ),
      )
    // After (re)connecting, signals sent meanwhile were lost: wake every queue, and bring
    // pauses and scales in line with the stored state.
    const resync = Effect.suspend(() =>
      Effect.forEach(
        Array.from(runners),
        ([name, { runner }]) => Effect.zipRight(followStoredState(name), runner.wake),
        { discard: true },
      ),
    )
    // What signals prompt runs in fibers of the layer's scope, off the LISTEN stream.
    const signalFibers = yield* FiberSet.make<void, never>()
    const runSignal = yield* FiberSet.runtime(signalFibers)<never>()
    // A cancel signal interrupts a job here only if the store says it is cancelled.
    const followCancel = (id: JobId) =>
      Effect.gen(function* () {
        const here = Array.from(runners.values()).filter(({ runner }) => runner.has(id))
        if (here.length === 0) return
        if (!(yield* store.isCancelled(id))) {
          return yield* Effect.logDebug(`ignoring a cancel signal for job ${id}, which is not cancelled`)
        }
        for (const { runner } of here) yield* runner.interruptJob(id)
      }).pipe(
        Effect.catchAll((error) =>
          Effect.logWarning(`could not read the state of job ${id} to cancel it: ${error.message}`),
        ),
      )
    const notifier = Notifier.make({
      listener,
      store,
      pingStore: livenessStore,
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
          runSignal(followCancel(signal.id as JobId))
          return
        }
        case "queue": {
          if (runners.has(signal.queue)) runSignal(followStoredState(signal.queue))
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
        // A queue paused or scaled cluster-wide starts so here too.
        const stored = yield* store.queueState(name).pipe(retryDatabase(`reading the state of queue ${name}`))
        storedConcurrency.set(name, stored.concurrency)
        storedPauseStamps.set(name, stored.pausedOrResumedAt)
        const scope = yield* Scope.fork(layerScope, { _tag: "Sequential" } as any)
        const runner = yield* QueueRunner.make(
          {
            name,
            concurrency: stored.concurrency ?? config.concurrency,
            paused: (config.paused ?? false) || stored.paused,
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
    // When the last successful heartbeat was sent, on the local monotonic clock. The database
    // stamps it later than that, so counting from here this node never thinks itself live
    // for longer than the rescuer does.
    const monotonicMillis = Effect.map(Clock.currentTimeNanos, (nanos) => Number(nanos / 1_000_000n))
    let lastBeat = yield* monotonicMillis
    let stale = false
    const heartbeat = Effect.gen(function* () {
      const sentAt = yield* monotonicMillis
      yield* livenessStore.heartbeat({
        id: node,
        host: hostname(),
        pid: process.pid,
        queues: Array.from(runners.keys()),
        startedAt,
      })
      lastBeat = Math.max(lastBeat, sentAt)
      if (stale) {
        stale = false
        yield* live.open
        yield* Effect.logInfo("the heartbeat succeeds again; claiming jobs again")
      }
    })
    // A node whose heartbeat is older than nodeTimeout may count as dead, and its jobs be
    // given to others: it claims nothing more until a heartbeat succeeds again.
    const watchHeartbeat = Effect.gen(function* () {
      const silentFor = (yield* monotonicMillis) - lastBeat
      if (stale || silentFor <= nodeTimeout) return
      stale = true
      yield* live.close
      yield* Effect.logWarning(
        `no heartbeat has succeeded for ${silentFor} ms, more than nodeTimeout: this node may count as dead, so it claims no jobs until one does`,
      )
    })
    // Two live processes under one name would hide each other's deaths from the rescuer.
    const registered = yield* store
      .registerNode({ id: node, host: hostname(), pid: process.pid, queues: [], startedAt }, nodeTimeout)
      .pipe(Effect.mapError(toDatabaseError("registering this node")))
    if (!registered) return yield* new NodeNameInUse({ node })
    const released = yield* store
      .rescueNode(node, config.maxRescues)
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
    yield* supervised(
      "liveness",
      Effect.forever(
        Effect.zipRight(
          Effect.sleep(Duration.min(heartbeatInterval, Duration.millis(nodeTimeout / 4))),
          watchHeartbeat,
        ),
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
    // A rescuer first proves its own liveness: on PGlite a handler's long transaction holds
    // the one session, and after it ends the rescue must not find this node's heartbeat stale
    // and take the jobs it is running.
    yield* supervised(
      "rescuer",
      leadership.everyWhileLeading(
        heartbeatInterval,
        Effect.flatMap(Effect.either(heartbeat), (beat) =>
          beat._tag === "Right"
            ? Maintenance.rescue(store, config.nodeTimeout, config.maxRescues)
            : Effect.void,
        ),
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

    const runnerOf = (name: string) =>
      Option.match(Option.fromNullable(runners.get(name)), {
        onNone: () => Effect.fail(new QueueNotFound({ queue: name })),
        onSome: ({ runner }) => Effect.succeed(runner),
      })

    // The cluster-wide operations are the client's; these hooks make this node follow at once.
    const api = Api.make({
      store,
      sql: plainSql,
      schema,
      maxPayloadBytes,
      nodeTimeoutMillis: nodeTimeout,
      local: {
        inserted: observer.inserted,
        cancelled: observer.cancelled,
        // Inside a transaction the claim may find nothing yet; the notification after the
        // commit wakes the queue again.
        wake: (batch) =>
          Effect.suspend(() => {
            const entry = batch.state === "available" ? runners.get(batch.queue) : undefined
            return entry === undefined
              ? Effect.void
              : entry.runner.wakeAt({ priority: batch.priority, at: batch.scheduledAt.getTime(), id: 0 })
          }),
        interrupt: (id) =>
          Effect.forEach(runners.values(), ({ runner }) => runner.interruptJob(id), { discard: true }),
        // The change is stored already; applied here at once, and remembered as read, so
        // that its own notification changes nothing more.
        queueChanged: (name, change) =>
          Effect.suspend(() => {
            const entry = runners.get(name)
            if (entry === undefined) return Effect.void
            if (change.concurrency !== undefined) {
              const concurrency = change.concurrency
              return queueStateLock.withPermits(1)(
                Effect.zipRight(
                  Effect.sync(() => storedConcurrency.set(name, concurrency)),
                  entry.runner.scale(concurrency),
                ),
              )
            }
            return change.paused ? entry.runner.pause : entry.runner.resume
          }),
        status: (name) => {
          const entry = runners.get(name)
          return entry === undefined ? Effect.succeed(undefined) : entry.runner.status
        },
      },
    })

    const service: Jobs.Jobs["Type"] = {
      ...api,
      node,
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
      pauseQueue: (name, control) =>
        control?.localOnly
          ? Effect.zipRight(
              checkQueueName(name),
              Effect.flatMap(runnerOf(name), (runner) => runner.pause),
            )
          : api.pauseQueue(name),
      resumeQueue: (name, control) =>
        control?.localOnly
          ? Effect.zipRight(
              checkQueueName(name),
              Effect.flatMap(runnerOf(name), (runner) => runner.resume),
            )
          : api.resumeQueue(name),
      scaleQueue: (name, concurrency, control) =>
        control?.localOnly
          ? Effect.gen(function* () {
              yield* checkQueueName(name)
              yield* checkWholeNumber(`concurrency of queue "${name}"`, concurrency, 1, 10_000)
              const runner = yield* runnerOf(name)
              yield* runner.scale(concurrency)
            })
          : api.scaleQueue(name, concurrency),
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
    }
    const schedules = Api.schedules(cron)
    return { jobs: service, client: api, schedules, tasks: taskManager.service }
  })

export type { JobRecord }
