/**
 * The supervision tree of one node, read top to bottom. Everything below runs in the layer's
 * scope; finalizers run last-in, first-out, so the queues stop first and the node leaves the
 * nodes table after its queues and tasks have stopped.
 *
 *   completer     batches the outcomes of attempts into one write
 *   finished signals  announces completions to watchers, at most once a second
 *   notifier      LISTEN; its signals wake, pause, scale and cancel (consumed by "signals")
 *   heartbeat     this node's row, and the watch that stops claiming while it is stale
 *   tasks         the task manager
 *   queue:<name>  one dispatcher per queue (queue/registry.ts)
 *   leadership    the leader election
 *   maintainer    the leader's rounds: rescuer, stager, cron, aggregates, pruner, vacuum, orphans
 *   commits       announces jobs inserted in an app's transaction once it committed
 */
import { SqlClient } from "@effect/sql/SqlClient"
import { Deferred, Duration, Effect, Fiber, FiberSet, Option, Queue, Stream } from "effect"
import type * as Job from "../Job.js"
import { type SupervisorEscalation, TestClockInUse } from "../JobError.js"
import type { JobId, JobRecord } from "../JobRecord.js"
import { Listener } from "../Listener.js"
import type * as Task from "../Task.js"
import * as Api from "./api/api.js"
import * as Commits from "./api/commits.js"
import * as JobsService from "./api/jobsService.js"
import type * as Jobs from "./api/service.js"
import * as RuntimeConfig from "./config.js"
import * as HookCallbacks from "./hookCallbacks.js"
import * as CronEnqueuer from "./maintenance/cronEnqueuer.js"
import * as Maintainer from "./maintenance/maintainer.js"
import * as Orphans from "./maintenance/orphans.js"
import * as Maintenance from "./maintenance/rounds.js"
import * as Heartbeat from "./node/heartbeat.js"
import * as Leadership from "./node/leadership.js"
import * as Notifier from "./node/notifier.js"
import * as Observer from "./observer.js"
import * as Completer from "./queue/completer.js"
import * as Journal from "./queue/journal.js"
import * as Registry from "./queue/registry.js"
import { migrate } from "./store/migrations.js"
import { PreparedStatements } from "./store/prepared.js"
import { retryDatabase, toDatabaseError } from "./store/retryDatabase.js"
import * as Store from "./store/store.js"
import { forkSupervised } from "./supervisor.js"
import * as TaskManager from "./tasks/taskManager.js"
import { isTestClock } from "./testClock.js"
import { quiet } from "./tracing/quiet.js"

export const make = <H extends ReadonlyArray<Job.Handler<any>>, T extends ReadonlyArray<Task.Task>>(
  options: Jobs.Options<H, T, Readonly<Record<string, number | Jobs.QueueConfig<any>>>>,
) =>
  quiet(
    Effect.gen(function* () {
      yield* refuseTestClock
      const config = yield* RuntimeConfig.decode(options)
      const { node, maxPayloadBytes, pollInterval, heartbeatInterval } = config

      const listener = yield* Listener
      const handlerContext = yield* Effect.context<any>()
      const { store, livenessStore } = yield* openStore(config, listener)
      const observer = yield* Observer.make(config.eventsCapacity)
      const { failure, supervised } = yield* makeSupervision(config)
      const hooks = yield* HookCallbacks.make({
        observer,
        handlers: config.handlers,
        queues: config.queues,
        context: handlerContext,
        shutdownTimeout: config.shutdownTimeout,
        supervise: supervised,
      })
      const cron = yield* prepareSchedules(config, store, observer)

      const completer = yield* startCompleter(config, store, node, supervised)

      // The claim latch lives in the heartbeat, made below; dispatchers start after it exists.
      let live: Effect.Effect<void> = Effect.void
      const queues = yield* Registry.make({
        store,
        environment: {
          store,
          completer,
          observer,
          journal: yield* Journal.make(store, config.progressInterval),
          node,
          handlers: config.handlers,
          live: Effect.suspend(() => live),
        },
        pollInterval,
        shutdownTimeout: config.shutdownTimeout,
        tracing: config.tracing,
        traceLinking: config.traceLinking,
        supervise: (name, loop) => supervised(name, Effect.provide(loop, handlerContext)),
        hooks,
      })

      // The task manager is made below, once the node is registered; its wake-up is set then.
      let wakeTasks: Effect.Effect<unknown> = Effect.void
      yield* listen({
        listener,
        store,
        livenessStore,
        node,
        pingInterval: config.pingInterval,
        queues,
        wakeTasks: Effect.suspend(() => wakeTasks),
        supervised,
      })

      // heartbeat: registered before any queue claims, removed after they stop.
      const heartbeat = yield* Heartbeat.register({
        store,
        livenessStore,
        node,
        heartbeatInterval,
        nodeTimeout: config.nodeTimeout,
        maxRescues: config.maxRescues,
        queues: queues.names,
        // Each beat samples the running-jobs gauge too: nothing on the per-job path counts for it.
        queueConfigs: Effect.zipLeft(queues.reports, Effect.map(queues.status, observer.sampleRunning)),
        handlers: Array.from(config.handlers.keys()),
        onRescued: observer.rescued,
      })
      live = heartbeat.live
      yield* supervised("heartbeat", heartbeat.run)
      yield* supervised("liveness", heartbeat.watch)

      // tasks: stopped before the node leaves, so a task run is never attributed to a node the
      // others no longer know.
      const taskManager = yield* startTasks(config, store, supervised)
      wakeTasks = taskManager.wake

      // queues
      for (const [name, queue] of config.queues) yield* queues.start(name, queue).pipe(Effect.orDie)
      yield* Effect.ignore(heartbeat.beat)
      yield* Effect.addFinalizer(() => queues.stopAll)

      // leadership, and the leader's maintenance rounds
      const leadership = Leadership.make(store, node, heartbeatInterval)
      yield* Effect.addFinalizer(() => leadership.resign)
      yield* supervised("leadership", leadership.run)
      const rounds = maintenanceRounds(config, store, cron, heartbeat, observer)
      yield* supervised("maintainer", Maintainer.run(rounds, leadership.isLeader, supervised))

      // Jobs inserted in an app's transaction are announced once it commits.
      const commits = yield* Commits.make(store, observer.inserted)
      yield* supervised("commits", commits.run)

      // The cluster-wide operations are the admin API's; these hooks make this node follow at once.
      const api = Api.make({
        store,
        maxPayloadBytes,
        nodeTimeoutMillis: Duration.toMillis(config.nodeTimeout),
        local: JobsService.localNode(queues, observer, node, commits),
        retention: config.prune === false ? undefined : retentionOf(config.prune),
        batchSize: config.prune === false ? undefined : config.prune.batchSize,
      })
      const beat = Effect.ignore(heartbeat.beat)
      const jobs = JobsService.make({ api, node, store, observer, completer, queues, failure, beat })
      return { jobs, client: api, schedules: Api.schedules(cron), tasks: taskManager.service }
    }),
  )

/**
 * The notifier and the fiber that follows its signals. Answers once LISTEN is live, so queues
 * started afterwards miss no signal sent after they read the stored state; a database that
 * cannot LISTEN still gets a runtime, woken by polling only.
 */
const listen = (env: {
  readonly listener: Listener["Type"]
  readonly store: Store.Store
  readonly livenessStore: Store.Store
  readonly node: string
  readonly pingInterval: Duration.Duration
  readonly queues: Registry.Registry
  /** Sends the task manager looking for runs: a task signal says one was resumed or asked for. */
  readonly wakeTasks: Effect.Effect<unknown>
  readonly supervised: Effect.Effect.Success<ReturnType<typeof makeSupervision>>["supervised"]
}) =>
  Effect.gen(function* () {
    const listening = yield* Deferred.make<void>()
    const notifier = yield* Notifier.make({
      listener: env.listener,
      store: env.store,
      pingStore: env.livenessStore,
      node: env.node,
      pingInterval: env.pingInterval,
      onListening: Effect.zipRight(Deferred.succeed(listening, undefined), env.queues.resync),
    })
    yield* env.supervised("signals", followSignals(notifier, env.queues, env.wakeTasks))
    yield* env.supervised("notifier", notifier.run.pipe(retryDatabase("listening for notifications")))
    yield* Deferred.await(listening).pipe(
      Effect.timeout("5 seconds"),
      Effect.catchAll(() => Effect.logWarning("LISTEN is not live after 5 seconds; starting queues anyway")),
    )
  })

/**
 * The store over the jobs schema, migrated, and the store liveness goes through: the engine's
 * own connection when it has one, so handlers that hold every connection of the pool cannot
 * make this node look dead.
 */
const openStore = (config: RuntimeConfig.RuntimeConfig, listener: Listener["Type"]) =>
  Effect.gen(function* () {
    const { schema } = config
    const sql = yield* SqlClient
    // The app's SqlClient may rename columns or parse JSON for its own rows; ours are read as stored.
    const plainSql = sql.withoutTransforms()
    const prepared = yield* Effect.serviceOption(PreparedStatements)
    // A retention of zero for completed jobs: a completion deletes its job instead of keeping it.
    const keepCompleted = config.prune === false || !Duration.isZero(config.prune.completed)
    const store = Store.make(plainSql, schema, Option.getOrUndefined(prepared), keepCompleted)
    const livenessStore =
      listener.liveness === undefined ? store : Store.make(listener.liveness.withoutTransforms(), schema)
    yield* migrate(sql, schema).pipe(
      Effect.catchTag("SqlError", (e) => toDatabaseError("migrating the jobs schema")(e)),
    )
    return { store, livenessStore }
  })

/** The task manager, with the tasks the options declare registered, and its loop supervised. */
const startTasks = (
  config: RuntimeConfig.RuntimeConfig,
  store: Store.Store,
  supervised: Effect.Effect.Success<ReturnType<typeof makeSupervision>>["supervised"],
) =>
  Effect.gen(function* () {
    const taskManager = yield* TaskManager.make({
      store,
      node: config.node,
      nodeTimeoutMillis: Duration.toMillis(config.nodeTimeout),
      pollInterval: config.pollInterval,
      historyLimit: config.taskHistory,
      eventsCapacity: config.eventsCapacity,
    })
    yield* TaskManager.declare(taskManager, config.tasks, taskManager.service.register)
    yield* supervised("tasks", taskManager.run)
    return taskManager
  })

/**
 * The completer, and the announcements of what it wrote: completions are signalled at most
 * once a second, the last ones included, so that what watches the jobs (an open dashboard)
 * sees them without polling. The completer's finalizer is registered before its fiber, so it
 * runs after the fiber stops and the last outcomes, jobs released at shutdown included, are
 * written.
 */
const startCompleter = (
  config: RuntimeConfig.RuntimeConfig,
  store: Store.Store,
  node: string,
  supervised: Effect.Effect.Success<ReturnType<typeof makeSupervision>>["supervised"],
) =>
  Effect.gen(function* () {
    const written = yield* Queue.sliding<void>(1)
    const completer = yield* Completer.make(store, config.completionBatchSize, () =>
      Queue.unsafeOffer(written, undefined),
    )
    yield* Effect.addFinalizer(() => completer.flushRemaining)
    yield* supervised("completer", completer.run)
    const announce = Notifier.sendSignal(store, { kind: "finished", node }).pipe(
      retryDatabase("announcing finished jobs"),
    )
    yield* supervised(
      "finished signals",
      Effect.forever(
        Queue.take(written).pipe(Effect.zipRight(announce), Effect.zipRight(Effect.sleep("1 second"))),
      ),
    )
    return completer
  })

/**
 * How the runtime's children are forked. A child that exhausted its restarts takes the runtime
 * down, as an OTP supervisor does: the app hears of it through `awaitFailure` (the `failure`
 * answered here) and through the interruption of its main fiber, the one building the runtime.
 */
const makeSupervision = (config: RuntimeConfig.RuntimeConfig) =>
  Effect.gen(function* () {
    const failure = yield* Deferred.make<never, SupervisorEscalation>()
    const root = yield* Effect.withFiberRuntime<Fiber.RuntimeFiber<unknown, unknown>>(Effect.succeed)
    const escalate = (error: SupervisorEscalation) =>
      Effect.zipRight(Deferred.fail(failure, error), Effect.asVoid(Fiber.interruptAsFork(root, root.id())))
    const supervised = <E, R>(name: string, child: Effect.Effect<unknown, E, R>) =>
      forkSupervised(name, child, config.restartPolicy, escalate)
    return { failure, supervised }
  })
const retentionOf = (prune: Exclude<RuntimeConfig.RuntimeConfig["prune"], false>) => ({
  completed: Duration.toMillis(prune.completed),
  cancelled: Duration.toMillis(prune.cancelled),
  discarded: Duration.toMillis(prune.discarded),
})

/**
 * On the TestClock the runtime's local waits (the wait for LISTEN, polls, heartbeats) end
 * only when a test moves the clock, so building it would hang: refuse at once instead.
 */
const refuseTestClock = Effect.clockWith((clock) =>
  isTestClock(clock) ? Effect.fail(new TestClockInUse()) : Effect.void,
)

/** Schedules given in the options: checked, then stored (a schedule's name is its identity). */
const prepareSchedules = (
  config: RuntimeConfig.RuntimeConfig,
  store: Store.Store,
  observer: Observer.Observer,
) =>
  Effect.gen(function* () {
    const cron = CronEnqueuer.make({
      store,
      maxPayloadBytes: config.maxPayloadBytes,
      onInserted: observer.inserted,
    })
    yield* CronEnqueuer.declare(cron, config.schedules)
    return cron
  })

/**
 * The signals the notifier hears, followed in the order they come. Insert wake-ups are quick
 * and applied in line; what needs the store (a cancel, a queue's changed state) runs in a fiber
 * of its own, so a slow read holds up no wake-up.
 */
const followSignals = (
  notifier: Notifier.Notifier,
  queues: Registry.Registry,
  wakeTasks: Effect.Effect<unknown>,
) =>
  Effect.gen(function* () {
    const reads = yield* FiberSet.make<void, never>()
    return yield* Stream.runForEach(notifier.signals, (signal) => {
      switch (signal.kind) {
        case "insert": {
          const { priority, at } = signal
          return queues.wake(
            signal.queue,
            typeof priority === "number" && typeof at === "number" ? { priority, at, id: 0 } : undefined,
          )
        }
        case "cancel":
          return Effect.asVoid(FiberSet.run(reads, queues.followCancel(signal.id as JobId)))
        case "task":
          return Effect.asVoid(wakeTasks)
        case "queue":
          return queues.has(signal.queue)
            ? Effect.asVoid(FiberSet.run(reads, queues.followStoredState(signal.queue)))
            : Effect.void
        default:
          return Effect.void
      }
    })
  }).pipe(Effect.scoped)

/** The leader's rounds, in the order they start. */
const maintenanceRounds = (
  config: RuntimeConfig.RuntimeConfig,
  store: Store.Store,
  cron: ReturnType<typeof CronEnqueuer.make>,
  heartbeat: Heartbeat.Heartbeat,
  observer: Observer.Observer,
): ReadonlyArray<Maintainer.Round> => {
  const rounds: Array<Maintainer.Round> = [
    // A rescuer first proves its own liveness: on PGlite a handler's long transaction holds the
    // one session, and after it ends the rescue must not find this node's heartbeat stale and
    // take the jobs it is running.
    Maintainer.round(
      "rescuer",
      config.heartbeatInterval,
      Effect.flatMap(Effect.either(heartbeat.beat), (beat) =>
        beat._tag === "Right"
          ? Maintenance.rescue(store, config.nodeTimeout, config.maxRescues, undefined, observer.rescued)
          : Effect.void,
      ),
    ),
    Maintainer.round("stager", config.stageInterval, Maintenance.stage(store)),
    // As often as nodes prove they live: fresh enough to alert on, rare enough for a count by state.
    Maintainer.round("stats", config.heartbeatInterval, Maintenance.sampleStates(store)),
    { name: "cron", interval: config.stageInterval, run: cron.enqueueDue },
    // Charts of throughput and latency read these aggregates, not the jobs.
    Maintainer.round("aggregates", Duration.minutes(1), Maintenance.aggregateStats(store)),
  ]
  const prune = config.prune
  if (prune !== false) {
    rounds.push(
      Maintainer.round(
        "pruner",
        prune.interval,
        Maintenance.prune(
          store,
          [
            ["completed", prune.completed],
            ["cancelled", prune.cancelled],
            ["discarded", prune.discarded],
          ],
          prune.batchSize,
          Duration.toMillis(config.nodeTimeout),
        ),
      ),
    )
  }
  rounds.push(
    Maintainer.round(
      "orphans",
      config.orphanInterval,
      Orphans.watch(store, Duration.toMillis(config.nodeTimeout)),
    ),
  )
  const vacuum = config.vacuum
  if (vacuum !== false) {
    rounds.push(Maintainer.round("vacuum", vacuum.interval, Maintenance.vacuum(store, vacuum.when)))
  }
  return rounds
}

export type { JobRecord }
