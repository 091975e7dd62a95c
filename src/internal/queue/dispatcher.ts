/**
 * One queue on one node: the claim loop (claimLoop.ts) that claims due jobs, the worker pool
 * (workerPool.ts) that runs them, and what wakes the loop (wakeups.ts).
 *
 * The loop claims up to `limit − running` jobs in one statement and starts each in a fiber of
 * its own. It sleeps until an insert signal, a freed slot while a backlog exists, or the poll
 * interval, whichever comes first.
 *
 * Finished outcomes wait in the completer for their batch write. Up to `limit` of them may
 * wait without holding up claims, so claiming the next batch overlaps writing the last one;
 * past that, each one waiting takes a slot. When the database writes outcomes more slowly
 * than handlers finish, claiming slows down to match instead of outcomes piling up in memory,
 * and no more than twice `limit` jobs are claimed by this node and not yet settled.
 */
import { Effect, Fiber, type Scope } from "effect"
import type * as Job from "../../Job.js"
import type { JobId } from "../../JobRecord.js"
import { makeClaimLoop } from "./claimLoop.js"
import type { ClaimPosition } from "./claimPosition.js"
import { Counters, type QueueOptions, type RunnerEnvironment } from "./options.js"
import { RunningFibers } from "./runningFibers.js"
import * as Wakeups from "./wakeups.js"
import { awaitEmpty, drain, makeStart } from "./workerPool.js"

export type { QueueOptions, RunnerEnvironment } from "./options.js"

export interface QueueStatus {
  readonly name: string
  readonly limit: number
  readonly running: number
  readonly paused: boolean
}

export interface QueueRunner {
  readonly name: string
  readonly status: Effect.Effect<QueueStatus>
  readonly pause: Effect.Effect<void>
  readonly resume: Effect.Effect<void>
  readonly scale: (limit: number) => Effect.Effect<void>
  /** Wakes the dispatcher, whose next claim reads the queue from the start. */
  readonly wake: Effect.Effect<void>
  /** Wakes the dispatcher for jobs that became available at or after `position`. */
  readonly wakeAt: (position: ClaimPosition) => Effect.Effect<void>
  /** Whether the job runs here. */
  readonly has: (id: JobId) => boolean
  /** Interrupts the job if it runs here; answers its type if it did. */
  readonly interruptJob: (id: JobId) => Effect.Effect<string | undefined>
  /** Waits until no job of this queue runs on this node. */
  readonly awaitIdle: Effect.Effect<void>
  /** Stops claiming, lets running jobs finish up to the shutdown timeout, then releases the rest. */
  readonly shutdown: Effect.Effect<void>
  /** The dispatcher loop; run it supervised. */
  readonly run: Effect.Effect<never>
}

export const make = (
  options: QueueOptions,
  env: RunnerEnvironment,
  defaultBackoff: Job.Definition["backoff"],
): Effect.Effect<QueueRunner, never, Scope.Scope> =>
  Effect.gen(function* () {
    // Handlers get their services from the loop's context, which the runtime provides once.
    const clock = yield* Effect.clock
    // Not a FiberMap: its bookkeeping costs more than a no-op job.
    const pool = new RunningFibers()
    const counters = new Counters(options.concurrency, options.paused)
    yield* Effect.addFinalizer(() =>
      Effect.suspend(() => {
        counters.closed = true
        return Fiber.interruptAll(pool.all())
      }),
    )
    const wakeups = yield* Wakeups.make(options.pollInterval)
    const unpaused = yield* Effect.makeLatch(!options.paused)
    const start = makeStart(options, env, defaultBackoff, clock, pool, counters, wakeups.wakeUnsafe)
    const { wake } = wakeups

    return {
      name: options.name,
      status: Effect.sync(() => ({
        name: options.name,
        limit: counters.limit,
        running: pool.size,
        paused: counters.paused,
      })),
      pause: Effect.zipRight(
        Effect.sync(() => {
          counters.paused = true
        }),
        unpaused.close,
      ),
      resume: Effect.zipRight(
        Effect.sync(() => {
          counters.paused = false
        }),
        Effect.zipRight(unpaused.open, wake),
      ),
      scale: (n) =>
        Effect.zipRight(
          Effect.sync(() => {
            counters.limit = n
          }),
          wake,
        ),
      wake,
      wakeAt: wakeups.wakeAt,
      has: (id) => pool.get(id) !== undefined,
      interruptJob: (id) =>
        Effect.gen(function* () {
          const fiber = pool.get(id)
          if (fiber === undefined) return undefined
          const type = pool.typeOf(id) ?? ""
          yield* Fiber.interrupt(fiber)
          return type
        }),
      awaitIdle: awaitEmpty(pool),
      shutdown: Effect.suspend(() => {
        counters.stopping = true
        return drain(pool, options)
      }),
      run: makeClaimLoop(options, env, counters, wakeups, unpaused, start),
    }
  })
