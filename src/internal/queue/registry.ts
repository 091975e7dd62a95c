/**
 * The queues running on this node: each one a dispatcher in a scope of its own, forked from the
 * layer's scope, so it can be started and stopped while the runtime runs. Closing a queue's
 * scope stops claiming first, then waits for its jobs.
 *
 * A cluster-wide pause, resume or scale is stored first and announced by a signal. A node
 * follows the stored state, never the signal's fields (anyone who can connect can send one),
 * and applies a stored change only when the value read differs from the one it last read, so
 * a pause or scale made here alone (`localOnly`) stands until the next stored change.
 */
import { Clock, Duration, Effect, ExecutionStrategy, Exit, Option, Scope } from "effect"
import * as Backoff from "../../Backoff.js"
import { QueueAlreadyRunning, QueueNotFound } from "../../JobError.js"
import type { JobId } from "../../JobRecord.js"
import type * as Jobs from "../api/service.js"
import type { HookCallbacks } from "../hookCallbacks.js"
import * as HookMiddleware from "../hookMiddleware.js"
import type { Observer } from "../observer.js"
import { retryDatabase } from "../store/retryDatabase.js"
import type { Store } from "../store/store.js"
import type { TraceLinking } from "../tracing/attemptSpan.js"
import type { ClaimPosition } from "./claimPosition.js"
import * as Dispatcher from "./dispatcher.js"

export interface RegistryOptions {
  readonly store: Store
  readonly environment: Dispatcher.RunnerEnvironment
  readonly pollInterval: Duration.Duration
  readonly shutdownTimeout: Duration.Duration
  readonly tracing: boolean | undefined
  readonly traceLinking: TraceLinking
  /** Runs a queue's dispatcher loop supervised, in the queue's scope. */
  readonly supervise: (name: string, loop: Effect.Effect<never>) => Effect.Effect<unknown, never, Scope.Scope>
  /** Where a queue's hook callbacks are registered. */
  readonly hooks: HookCallbacks
}

interface Entry {
  readonly runner: Dispatcher.QueueRunner
  readonly scope: Scope.CloseableScope
  readonly config: Jobs.QueueConfig<any>
}

export interface Registry {
  readonly names: () => ReadonlyArray<string>
  readonly configs: () => ReadonlyArray<readonly [string, Jobs.QueueConfig<any>]>
  readonly has: (name: string) => boolean
  /** The queue's dispatcher, or `QueueNotFound` when it does not run here. */
  readonly get: (name: string) => Effect.Effect<Dispatcher.QueueRunner, QueueNotFound>
  readonly start: (name: string, config: Jobs.QueueConfig<any>) => Effect.Effect<void, QueueAlreadyRunning>
  /** Stops claiming, waits for the queue's jobs (up to the shutdown timeout) and forgets it. */
  readonly stop: (name: string) => Effect.Effect<void, QueueNotFound>
  /** Stops every queue at once. */
  readonly stopAll: Effect.Effect<void>
  readonly status: Effect.Effect<ReadonlyArray<Dispatcher.QueueStatus>>
  readonly statusOf: (name: string) => Effect.Effect<Dispatcher.QueueStatus | undefined>
  /** Each queue with the settings it runs with now, as the heartbeat reports them. */
  readonly reports: Effect.Effect<Readonly<Record<string, Jobs.NodeQueue>>>
  /** An insert signal or a local insert: wakes the queue, from `at` when it is known. */
  readonly wake: (name: string, at: ClaimPosition | undefined) => Effect.Effect<void>
  /** A queue signal, or a change this node stored: re-read the queue's stored state and follow it. */
  readonly followStoredState: (name: string) => Effect.Effect<void>
  /** After (re)connecting: signals sent meanwhile were lost, so every queue follows the store and wakes. */
  readonly resync: Effect.Effect<void>
  /** Interrupts the job wherever it runs here. */
  readonly interrupt: (id: JobId) => Effect.Effect<void>
  /** A cancel signal: interrupts the job here only if the store says it is cancelled. */
  readonly followCancel: (id: JobId) => Effect.Effect<void>
}

const limitsOf = (config: Jobs.QueueConfig<any>) =>
  config.globalLimit === undefined && config.rateLimit === undefined
    ? undefined
    : {
        global: config.globalLimit,
        rate: config.rateLimit && {
          limit: config.rateLimit.limit,
          periodMillis: Duration.toMillis(config.rateLimit.period),
        },
      }

/** The running queues, and what this node last read from the store for each. */
interface Queues {
  readonly entries: Map<string, Entry>
  readonly storedConcurrency: Map<string, number | null>
  readonly storedPauseStamps: Map<string, string | null>
  /** The same, of what is stored for the queue on this node alone. */
  readonly nodeConcurrency: Map<string, number | null>
  readonly nodePauseStamps: Map<string, string | null>
  /** Orders reading and applying a queue's stored state with the changes made here. */
  readonly stateLock: Effect.Semaphore
}

/** Starts a queue's dispatcher in a scope of its own, forked from the layer's. */
const launch = (
  options: RegistryOptions,
  layerScope: Scope.Scope,
  queues: Queues,
  name: string,
  config: Jobs.QueueConfig<any>,
) =>
  Effect.gen(function* () {
    // A queue paused or scaled cluster-wide starts so here too.
    const stored = yield* options.store
      .queueState(name)
      .pipe(retryDatabase(`reading the state of queue ${name}`))
    queues.storedConcurrency.set(name, stored.concurrency)
    queues.storedPauseStamps.set(name, stored.pausedOrResumedAt)
    // What was stored for an earlier process of this node's name is taken as read, not obeyed:
    // a change aimed at one node lasts as long as that node runs.
    const own = yield* options.store
      .nodeQueueState(name, options.environment.node)
      .pipe(retryDatabase(`reading the state of queue ${name} on this node`))
    queues.nodeConcurrency.set(name, own.concurrency)
    queues.nodePauseStamps.set(name, own.pausedOrResumedAt)
    const scope = yield* Scope.fork(layerScope, ExecutionStrategy.sequential)
    const runner = yield* Dispatcher.make(
      {
        name,
        concurrency: stored.concurrency ?? config.concurrency,
        paused: (config.paused ?? false) || stored.paused,
        pollInterval: config.pollInterval ? Duration.decode(config.pollInterval) : options.pollInterval,
        shutdownTimeout: options.shutdownTimeout,
        tracing: options.tracing,
        traceLinking: options.traceLinking,
        deadLetter: config.deadLetter,
        limits: limitsOf(config),
      },
      // A queue with hook middleware runs its handlers wrapped in it; any other, the handlers as given.
      {
        ...options.environment,
        handlers: HookMiddleware.forQueue(options.environment.handlers, config.hooks),
      },
      Backoff.defaultBackoff,
    ).pipe(Scope.extend(scope))
    yield* options.hooks.addQueue(name, config.hooks)
    yield* Scope.addFinalizer(
      scope,
      Effect.sync(() => options.hooks.removeQueue(name)),
    )
    yield* Scope.addFinalizer(scope, runner.shutdown)
    yield* options.supervise(`queue:${name}`, runner.run).pipe(Scope.extend(scope))
    queues.entries.set(name, { runner, scope, config })
  })

/** One stored state of a queue (cluster-wide, or for this node alone) and what was last read of it. */
interface Followed {
  /** True or false when a pause or resume is stored; null when none ever was. */
  readonly paused: boolean | null
  readonly pausedOrResumedAt: string | null
  readonly concurrency: number | null
  readonly stamps: Map<string, string | null>
  readonly concurrencies: Map<string, number | null>
}

/** Applies a stored pause, resume or scale to the queue when it changed since it was last read. */
const applyChanged = (name: string, runner: Dispatcher.QueueRunner, state: Followed) =>
  Effect.gen(function* () {
    if (state.pausedOrResumedAt !== state.stamps.get(name)) {
      state.stamps.set(name, state.pausedOrResumedAt)
      if (state.paused === true) yield* runner.pause
      else if (state.paused === false) yield* runner.resume
    }
    const concurrency = state.concurrency
    if (concurrency !== null && concurrency !== state.concurrencies.get(name)) {
      state.concurrencies.set(name, concurrency)
      // The column's check keeps it whole and in range; a value that is not is ignored.
      if (Number.isInteger(concurrency) && concurrency >= 1 && concurrency <= 10_000) {
        yield* runner.scale(concurrency)
      }
    }
  })

/**
 * Follows the queue's cluster-wide state, then what was stored for it on this node alone. A
 * cluster-wide resume resumes a queue paused here alone, or started paused, too.
 */
const followStoredState = (store: Store, queues: Queues, name: string, node: string) =>
  Effect.gen(function* () {
    const entry = queues.entries.get(name)
    if (!entry) return
    const stored = yield* store.queueState(name)
    yield* applyChanged(name, entry.runner, {
      paused: stored.pausedOrResumedAt === null ? null : stored.paused,
      pausedOrResumedAt: stored.pausedOrResumedAt,
      concurrency: stored.concurrency,
      stamps: queues.storedPauseStamps,
      concurrencies: queues.storedConcurrency,
    })
    const own = yield* store.nodeQueueState(name, node)
    yield* applyChanged(name, entry.runner, {
      ...own,
      stamps: queues.nodePauseStamps,
      concurrencies: queues.nodeConcurrency,
    })
  }).pipe(
    queues.stateLock.withPermits(1),
    Effect.catchAll((error) =>
      Effect.logWarning(`could not read the stored state of queue ${name}: ${error.message}`),
    ),
  )

/** The node that ran the job publishes its `Cancelled` too: the node that cancelled it may be another. */
const followCancel = (store: Store, observer: Observer, entries: Map<string, Entry>, id: JobId) =>
  Effect.gen(function* () {
    const here = Array.from(entries.values()).filter(({ runner }) => runner.has(id))
    if (here.length === 0) return
    if (!(yield* store.isCancelled(id))) {
      return yield* Effect.logDebug(`ignoring a cancel signal for job ${id}, which is not cancelled`)
    }
    for (const { runner } of here) {
      const type = yield* runner.interruptJob(id)
      if (type !== undefined)
        observer.cancelled({ id, queue: runner.name, type }, yield* Clock.currentTimeMillis)
    }
  }).pipe(
    Effect.catchAll((error) =>
      Effect.logWarning(`could not read the state of job ${id} to cancel it: ${error.message}`),
    ),
  )

const close = (entry: Entry) => Scope.close(entry.scope, Exit.void)

const report = (config: Jobs.QueueConfig<any>, status: Dispatcher.QueueStatus): Jobs.NodeQueue => ({
  concurrency: status.limit,
  paused: status.paused,
  globalLimit: config.globalLimit ?? null,
  rateLimit: config.rateLimit
    ? { limit: config.rateLimit.limit, periodMillis: Duration.toMillis(config.rateLimit.period) }
    : null,
  deadLetter: config.deadLetter ?? null,
})

export const make = (options: RegistryOptions): Effect.Effect<Registry, never, Scope.Scope> =>
  Effect.gen(function* () {
    const { store } = options
    const layerScope = yield* Effect.scope
    const queues: Queues = {
      entries: new Map(),
      storedConcurrency: new Map(),
      storedPauseStamps: new Map(),
      nodeConcurrency: new Map(),
      nodePauseStamps: new Map(),
      stateLock: yield* Effect.makeSemaphore(1),
    }
    const { entries } = queues
    const follow = (name: string) => followStoredState(store, queues, name, options.environment.node)

    return {
      names: () => Array.from(entries.keys()),
      configs: () => Array.from(entries, ([name, entry]) => [name, entry.config] as const),
      has: (name) => entries.has(name),
      get: (name) =>
        Option.match(Option.fromNullable(entries.get(name)), {
          onNone: () => Effect.fail(new QueueNotFound({ queue: name })),
          onSome: ({ runner }) => Effect.succeed(runner),
        }),
      start: (name, config) =>
        Effect.suspend(() =>
          entries.has(name)
            ? Effect.fail(new QueueAlreadyRunning({ queue: name }))
            : launch(options, layerScope, queues, name, config),
        ),
      stop: (name) =>
        Effect.suspend(() => {
          const entry = entries.get(name)
          if (!entry) return Effect.fail(new QueueNotFound({ queue: name }))
          entries.delete(name)
          return close(entry)
        }),
      stopAll: Effect.suspend(() =>
        Effect.forEach(entries.values(), close, { concurrency: "unbounded", discard: true }),
      ),
      // Suspended: the map's iterator must be taken afresh on every call.
      status: Effect.suspend(() =>
        Effect.forEach(Array.from(entries.values()), ({ runner }) => runner.status),
      ),
      statusOf: (name) =>
        Effect.suspend(() => {
          const entry = entries.get(name)
          return entry === undefined ? Effect.succeed(undefined) : entry.runner.status
        }),
      reports: Effect.suspend(() =>
        Effect.map(
          Effect.forEach(Array.from(entries), ([name, { runner, config }]) =>
            Effect.map(runner.status, (status) => [name, report(config, status)] as const),
          ),
          (pairs) => Object.fromEntries(pairs),
        ),
      ),
      wake: (name, at) =>
        Effect.suspend(() => {
          const entry = entries.get(name)
          if (!entry) return Effect.void
          return at === undefined ? entry.runner.wake : entry.runner.wakeAt(at)
        }),
      followStoredState: follow,
      resync: Effect.suspend(() =>
        Effect.forEach(
          Array.from(entries),
          ([name, { runner }]) => Effect.zipRight(follow(name), runner.wake),
          { discard: true },
        ),
      ),
      interrupt: (id) =>
        Effect.suspend(() =>
          Effect.forEach(entries.values(), ({ runner }) => runner.interruptJob(id), { discard: true }),
        ),
      followCancel: (id) => followCancel(store, options.environment.observer, entries, id),
    }
  })
