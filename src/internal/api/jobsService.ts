/**
 * The `Jobs` service of a worker node: the cluster-wide operations of the admin API, plus what
 * only a node that runs queues can do (start, stop, drain and flush them, pause or scale them
 * here alone, watch its events).
 */
import { Deferred, Effect } from "effect"
import { QueueAlreadyRunning, QueueConfigConflict, type SupervisorEscalation } from "../../JobError.js"
import * as RuntimeConfig from "../config.js"
import type { Observer } from "../observer.js"
import type { Completer } from "../queue/completer.js"
import type { Registry } from "../queue/registry.js"
import { toDatabaseError } from "../store/retryDatabase.js"
import type { Store } from "../store/store.js"
import type * as Api from "./api.js"
import type { Commits } from "./commits.js"
import type * as Jobs from "./service.js"
import { checkQueueName, checkWholeNumber, invalid } from "./validation.js"

export interface JobsServiceEnvironment {
  readonly api: ReturnType<typeof Api.make>
  readonly node: string
  readonly store: Store
  readonly observer: Observer
  readonly completer: Completer
  readonly queues: Registry
  readonly failure: Deferred.Deferred<never, SupervisorEscalation>
  /** Writes this node's heartbeat now, so the cluster sees a queue started or stopped here at once. */
  readonly beat: Effect.Effect<void>
}

const checkDeadLetterCycles = (queues: ReadonlyMap<string, Jobs.QueueConfig<any>>) => {
  const cycle = RuntimeConfig.deadLetterCycle(queues)
  return cycle === undefined ? Effect.void : Effect.fail(invalid(cycle))
}

/** The hooks that make this node follow at once what the cluster-wide operations change. */
export const localNode = (
  queues: Registry,
  observer: Observer,
  node: string,
  commits: Commits,
): Api.LocalNode => ({
  node,
  inserted: observer.inserted,
  insertedInTransaction: commits.track,
  cancelled: observer.cancelled,
  // Inside a transaction the claim may find nothing yet; the notification after the commit
  // wakes the queue again.
  wake: (batch) =>
    batch.state === "available"
      ? queues.wake(batch.queue, { priority: batch.priority, at: batch.scheduledAt.getTime(), id: 0 })
      : Effect.void,
  interrupt: queues.interrupt,
  queueChanged: queues.followStoredState,
  status: queues.statusOf,
})

export const make = (env: JobsServiceEnvironment): Jobs.JobsService => {
  const { api, store, observer, completer, queues } = env
  const start = (name: string, config: number | Jobs.QueueConfig) =>
    Effect.gen(function* () {
      const queue = yield* RuntimeConfig.decodeQueue(name, config)
      if (queues.has(name)) return yield* new QueueAlreadyRunning({ queue: name })
      yield* checkDeadLetterCycles(new Map([...queues.configs(), [name, queue]]))
      yield* queues.start(name, queue)
    })
  return {
    ...api,
    node: env.node,
    events: observer.events,
    subscribe: observer.subscribe,
    startQueue: (name, config) => Effect.zipLeft(start(name, config), env.beat),
    ensureQueue: (name, config) =>
      Effect.gen(function* () {
        const queue = yield* RuntimeConfig.decodeQueue(name, config)
        const running = queues.configs().find(([n]) => n === name)?.[1]
        if (running === undefined) {
          const started = yield* start(name, queue).pipe(
            Effect.as(true),
            // Started meanwhile by another caller: compared below like any running queue.
            Effect.catchTag("QueueAlreadyRunning", () => Effect.succeed(false)),
          )
          if (started) {
            yield* env.beat
            return "started" as const
          }
        }
        const current = running ?? queues.configs().find(([n]) => n === name)?.[1]
        const differences = current === undefined ? [] : RuntimeConfig.queueDifferences(current, queue)
        if (differences.length > 0) return yield* new QueueConfigConflict({ queue: name, differences })
        return "running" as const
      }),
    stopQueue: (name) => Effect.zipRight(queues.stop(name), Effect.zipRight(completer.barrier, env.beat)),
    pauseQueue: (name, control) =>
      control?.localOnly
        ? Effect.gen(function* () {
            yield* checkQueueName(name)
            const runner = yield* queues.get(name)
            const before = yield* runner.status
            yield* runner.pause
            return before.paused ? ("already_paused" as const) : ("paused" as const)
          })
        : api.pauseQueue(name, control),
    resumeQueue: (name, control) =>
      control?.localOnly
        ? Effect.gen(function* () {
            yield* checkQueueName(name)
            const runner = yield* queues.get(name)
            const before = yield* runner.status
            yield* runner.resume
            return before.paused ? ("resumed" as const) : ("already_active" as const)
          })
        : api.resumeQueue(name, control),
    scaleQueue: (name, concurrency, control) =>
      control?.localOnly
        ? Effect.gen(function* () {
            yield* checkQueueName(name)
            yield* checkWholeNumber(`concurrency of queue "${name}"`, concurrency, 1, 10_000)
            const runner = yield* queues.get(name)
            yield* runner.scale(concurrency)
          })
        : api.scaleQueue(name, concurrency, control),
    queues: queues.status,
    drain: (name) =>
      Effect.gen(function* () {
        const runner = yield* queues.get(name)
        yield* runner.awaitIdle
        yield* completer.barrier
      }),
    flush: (name) =>
      Effect.gen(function* () {
        const runner = yield* queues.get(name)
        while (
          yield* store.hasDueOrRunning(name).pipe(Effect.mapError(toDatabaseError("checking a queue")))
        ) {
          yield* runner.wake
          yield* Effect.sleep("10 millis")
        }
        yield* completer.barrier
      }),
    awaitFailure: Deferred.await(env.failure),
  }
}
