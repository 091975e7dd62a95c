/**
 * One queue on one node: the dispatcher loop that claims due jobs and the pool of fibers
 * that run them.
 *
 * The loop claims up to `limit − running` jobs in one statement and forks each into a fiber
 * of its own, kept by job id, so a single job can be interrupted (cancel) and the whole pool
 * drained (shutdown). It sleeps until an insert signal, a freed slot while a backlog exists,
 * or the poll interval, whichever comes first. Each claim starts at the dispatcher's claim
 * position (claimPosition.ts), not at the start of the claim index.
 *
 * Finished outcomes wait in the completer for their batch write. Up to `limit` of them may
 * wait without holding up claims, so claiming the next batch overlaps writing the last one;
 * past that, each one waiting takes a slot. When the database writes outcomes more slowly
 * than handlers finish, claiming slows down to match instead of outcomes piling up in memory,
 * and no more than twice `limit` jobs are claimed by this node and not yet settled.
 *
 * Why `make` is long: the claim loop and the attempt runner share the counters above
 * (running, held, suspects, limit) and run on the per-job path, so they stay closures over
 * plain variables. What needs none of that lives apart: the outcome policy (outcome.ts), the
 * claim position (claimPosition.ts), `perform`, `abandon` and `drain` below.
 */
import { randomUUID } from "node:crypto"
import {
  Cause,
  Clock,
  Context,
  DefaultServices,
  Duration,
  Effect,
  Either,
  Exit,
  Fiber,
  FiberRef,
  FiberRefs,
  HashMap,
  Option,
  Queue,
  Runtime,
  Schedule,
  type Scope,
  Tracer,
} from "effect"
import type * as Job from "../../Job.js"
import { JobTimeout, UnknownJobType, UnstorableOutcome } from "../../JobError.js"
import type { JobId, JobRecord } from "../../JobRecord.js"
import { FinishedAttempt, type Observer } from "../observer.js"
import { databaseRetrySchedule, retryDatabase } from "../store/retryDatabase.js"
import { Completed, type Outcome, type QueueLimits, type Store } from "../store/store.js"
import { type ClaimPosition, claimStart, makeCursor } from "./claimPosition.js"
import type { Completer } from "./completer.js"
import { decideOutcome, lastResort } from "./outcome.js"
import { RunningFibers } from "./runningFibers.js"

export interface QueueOptions {
  readonly name: string
  readonly concurrency: number
  readonly paused: boolean
  readonly pollInterval: Duration.Duration
  readonly shutdownTimeout: Duration.Duration
  /** Cluster-wide limits, when the queue has any. */
  readonly limits: QueueLimits | undefined
  /** Where this queue's discarded jobs go instead of staying discarded. */
  readonly deadLetter: string | undefined
  /** A span per attempt; undefined means "when a tracer other than Effect's built-in one is installed". */
  readonly tracing: boolean | undefined
}

/**
 * Effect's default tracer keeps spans in memory and exports them nowhere; a span per attempt
 * under it costs a large share of a no-op job and shows nothing.
 */
const builtInTracer = Context.get(DefaultServices.liveServices, Tracer.Tracer)

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
  /** Interrupts the job if it runs here; true if it did. */
  readonly interruptJob: (id: JobId) => Effect.Effect<boolean>
  /** Waits until no job of this queue runs on this node. */
  readonly awaitIdle: Effect.Effect<void>
  /** Stops claiming, lets running jobs finish up to the shutdown timeout, then releases the rest. */
  readonly shutdown: Effect.Effect<void>
  /** The dispatcher loop; run it supervised. */
  readonly run: Effect.Effect<never>
}

type Fork = (id: JobId, attempt: Effect.Effect<void>) => Fiber.RuntimeFiber<void>

export interface RunnerEnvironment {
  readonly store: Store
  readonly completer: Completer
  readonly observer: Observer
  readonly node: string
  readonly handlers: ReadonlyMap<string, Job.Handler<any>>
  /**
   * Open while this node's heartbeat is fresh: a node that may already count as dead claims
   * nothing more until its heartbeat succeeds again. Always open when not given.
   */
  readonly live?: Effect.Effect<void> | undefined
}

/** What an attempt runs: the handler, under the definition's timeout and, if asked, a span. */
export const perform = (
  handlers: ReadonlyMap<string, Job.Handler<any>>,
  node: string,
  job: JobRecord,
  traced: boolean,
): Effect.Effect<unknown, unknown> => {
  const handler = handlers.get(job.type)
  const definition = handler?.definition
  let run: Effect.Effect<unknown, unknown>
  try {
    run = handler
      ? (handler.perform(job) as Effect.Effect<unknown, unknown>)
      : Effect.fail(new UnknownJobType({ type: job.type, node }))
  } catch (thrown) {
    // The handler threw while building its Effect: a defect of this attempt like any other.
    run = Effect.die(thrown)
  }
  if (definition && Option.isSome(definition.timeout)) {
    const timeoutMillis = Duration.toMillis(definition.timeout.value)
    run = Effect.timeoutFail(run, {
      duration: definition.timeout.value,
      onTimeout: () => new JobTimeout({ timeoutMillis }),
    })
  }
  if (traced) {
    run = Effect.withSpan(run, "effect-jobs.perform", {
      attributes: {
        "job.queue": job.queue,
        "job.type": job.type,
        "job.id": job.id,
        "job.attempt": job.attempt,
      },
      captureStackTrace: false,
    })
  }
  return run
}

/**
 * A claim interrupted while its statement ran (the queue is stopping) may have committed
 * all the same: its jobs are found by the lease and put back, attempt given back.
 */
const abandon = (store: Store, completer: Completer, lease: string) =>
  store.claimedWith(lease).pipe(
    Effect.retry(Schedule.intersect(Schedule.exponential("50 millis"), Schedule.recurs(4))),
    Effect.flatMap((jobs) =>
      Effect.forEach(
        jobs,
        (job) => completer.submit({ kind: "released", id: job.id, lease }, job.attempt, () => {}),
        { discard: true },
      ),
    ),
    Effect.catchAll((error) =>
      Effect.logError(
        `could not look up the jobs of an interrupted claim; the rescuer will: ${error.message}`,
      ),
    ),
  )

/** Waits until no attempt runs. Attempt fibers never fail (every exit becomes an outcome), so neither does this. */
const awaitEmpty = (pool: RunningFibers) =>
  Effect.whileLoop({
    while: () => pool.size > 0,
    body: () => Fiber.await(pool.any()!),
    step: () => {},
  })

/** Lets running jobs finish up to the shutdown timeout, then interrupts the rest (they are given back). */
const drain = (pool: RunningFibers, options: QueueOptions) =>
  Effect.gen(function* () {
    // Finalizers run uninterruptibly; the wait must stay interruptible for the timeout to end it.
    const finished = yield* Effect.timeout(
      Effect.interruptible(awaitEmpty(pool)),
      options.shutdownTimeout,
    ).pipe(Effect.option)
    if (Option.isSome(finished)) return
    // A handler that cannot be interrupted (a blocking call, an uninterruptible region) holds
    // the shutdown until it ends: name the jobs, so an operator knows what it waits for.
    const held = pool
      .jobs()
      .map((job) => `${job.id} (${job.type ?? "?"})`)
      .join(", ")
    yield* Effect.logWarning(
      `queue ${options.name}: ${pool.size} job(s) still running after the shutdown timeout; interrupting and releasing them; the shutdown waits for any that cannot be interrupted: ${held}`,
    ).pipe(Effect.annotateLogs({ queue: options.name, jobs: held }))
    yield* Fiber.interruptAll(pool.all())
  })

export const make = (
  options: QueueOptions,
  env: RunnerEnvironment,
  defaultBackoff: Job.Definition["backoff"],
): Effect.Effect<QueueRunner, never, Scope.Scope> =>
  Effect.gen(function* () {
    const { store, completer, observer, node, handlers } = env
    const live = env.live ?? Effect.void
    // Handlers get their services from the loop's context, which the runtime provides once.
    const clock = yield* Effect.clock
    // Not a FiberMap: its bookkeeping costs more than a no-op job.
    const pool = new RunningFibers()
    let closed = false
    yield* Effect.addFinalizer(() =>
      Effect.suspend(() => {
        closed = true
        return Fiber.interruptAll(pool.all())
      }),
    )
    const wakeups = yield* Queue.sliding<void>(1)
    const unpaused = yield* Effect.makeLatch(!options.paused)
    let paused = options.paused
    let limit = options.concurrency
    // running: claimed here and not yet ended; held: claimed here and not yet settled (still
    // running, or its outcome waiting to be written).
    let running = 0
    let held = 0
    const demand = () => Math.min(limit - running, 2 * limit - held)
    let suspectsRunning = 0
    let backlog = false
    let stopping = false

    const cursor = makeCursor(Duration.toMillis(options.pollInterval))
    const signal = cursor.signal
    const wakeAt = (at: ClaimPosition) =>
      Effect.asVoid(
        Effect.zipRight(
          Effect.sync(() => signal(at)),
          Queue.offer(wakeups, undefined),
        ),
      )
    const wake = wakeAt(claimStart)
    const wakeUnsafe = () => {
      Queue.unsafeOffer(wakeups, undefined)
    }

    // Refill in batches: wait until half the slots are free unless the queue is idle.
    const refill = () => {
      if (backlog && demand() >= Math.ceil(limit / 2)) wakeUnsafe()
    }
    /** A job's outcome is settled: written, or refused for a stale lease. */
    const release = () => {
      held--
      refill()
    }

    /**
     * Ends an attempt: the outcome goes to the completer, which tells the observer once written.
     * The callback holds what the observer needs, not the job's record.
     */
    const conclude = (job: JobRecord, outcome: Outcome, startedAt: number, finishedAt: number) => {
      const finished = new FinishedAttempt(job.id, job.queue, job.type, job.attempt, startedAt, finishedAt)
      return completer.offer(outcome, job.attempt, finishedAt, (written) => {
        if (written !== undefined) observer.finished(finished, written)
        release()
      })
    }

    /**
     * Starts one job in a fiber of its own. This is the per-job path, so it is built from as few
     * Effect steps as it can be: the handler, then a synchronous conclusion when it succeeded.
     * A failure takes the slower path (backoff, a warning), and so does a result that cannot be
     * stored. The fiber's observer does the bookkeeping, and gives the job back when the fiber
     * was stopped before it concluded (shutdown, or a cancel): the attempt is not counted. A
     * cancelled job is no longer `executing`, so that write does not apply to it; a cancel
     * signal that arrives late and hits a newer attempt only puts that back. A fiber that died
     * before it concluded still concludes, with a failure: giving that attempt back would run
     * the job again and again without ever counting.
     */
    const start = (job: JobRecord, lease: string, traced: boolean, fork: Fork) => {
      let startedAt = 0
      let concluded = false
      const fail = (cause: Cause.Cause<unknown>, finishedAt: number) =>
        Effect.flatMap(
          decideOutcome(
            job,
            lease,
            Exit.failCause(cause),
            finishedAt,
            handlers.get(job.type)?.definition.backoff ?? defaultBackoff,
            options.deadLetter,
          ),
          (outcome) => {
            conclude(job, outcome, startedAt, finishedAt)
            concluded = true
            return "error" in outcome
              ? Effect.logWarning(
                  `job ${job.id} (${job.type}) attempt ${job.attempt} failed: ${outcome.error.message}`,
                )
              : Effect.void
          },
        )
      const attempt = Effect.suspend(() => {
        startedAt = clock.unsafeCurrentTimeMillis()
        observer.started(job, startedAt)
        return Effect.matchCauseEffect(perform(handlers, node, job, traced), {
          onSuccess: (result) => {
            const finishedAt = clock.unsafeCurrentTimeMillis()
            const unstorable = conclude(job, new Completed(job.id, lease, result), startedAt, finishedAt)
            if (unstorable === undefined) {
              concluded = true
              return Effect.void
            }
            return fail(Cause.fail(new UnstorableOutcome({ reason: unstorable })), finishedAt)
          },
          onFailure: (cause) => fail(cause, clock.unsafeCurrentTimeMillis()),
        })
      })
      const giveBack = () =>
        completer.offer(
          { kind: "released", id: job.id, lease },
          job.attempt,
          clock.unsafeCurrentTimeMillis(),
          release,
        )
      if (closed) {
        running--
        if (job.rescues > 0) suspectsRunning--
        giveBack()
        return
      }
      const fiber = fork(job.id, attempt)
      const slot = pool.add(job.id, fiber, job.type)
      // Called at once when the fiber has already finished.
      fiber.addObserver((exit) => {
        pool.remove(slot)
        if (job.rescues > 0) suspectsRunning--
        if (!concluded) {
          if (Exit.isFailure(exit) && !Cause.isInterrupted(exit.cause)) {
            const now = clock.unsafeCurrentTimeMillis()
            conclude(job, lastResort(job, lease, exit.cause, now), startedAt, now)
          } else giveBack()
        }
        running--
        refill()
      })
    }

    /**
     * Claims with a fresh lease, retrying while the database is unreachable. A claim that
     * failed may still have committed (the connection broke after the commit), so before each
     * retry the jobs holding the failed claim's lease are looked up and, if any, run. Runs
     * uninterruptibly but for the statement itself and the waits (`restore`).
     */
    const claim = (
      demand: number,
      restore: <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.Effect<A, E, R>,
    ) =>
      Effect.gen(function* () {
        const retries = yield* Schedule.driver(databaseRetrySchedule)
        while (true) {
          const lease = randomUUID()
          const now = new Date(yield* Clock.currentTimeMillis)
          // One job rescued before (a suspect) at a time on this node: see the claim statement.
          const suspects = suspectsRunning === 0 ? 1 : 0
          const result = yield* Effect.either(
            restore(
              options.limits === undefined
                ? Effect.suspend(() => {
                    const from = cursor.startOfClaim(now.getTime())
                    return Effect.map(
                      store.claim(options.name, demand, node, lease, now, suspects, from),
                      (jobs) => {
                        cursor.claimed(from, demand, jobs)
                        return jobs
                      },
                    )
                  })
                : store.claimLimited(options.name, demand, node, lease, now, options.limits, suspects),
            ).pipe(Effect.onInterrupt(() => abandon(store, completer, lease))),
          )
          if (Either.isRight(result)) return { jobs: result.right, lease }
          // The failed claim's place is not known: the next one starts over.
          signal(claimStart)
          yield* Effect.logWarning(`claiming jobs failed; retrying: ${result.left.message}`)
          yield* restore(Effect.orDie(retries.next(result.left)))
          const adopted = yield* restore(
            store.claimedWith(lease).pipe(retryDatabase("looking up an interrupted claim")),
          ).pipe(Effect.onInterrupt(() => abandon(store, completer, lease)))
          if (adopted.length > 0) return { jobs: adopted, lease }
        }
      })

    // Between a claim's commit and the forks that run its jobs nothing may interrupt: a job
    // claimed but never forked would stay `executing` on a live node, where no rescue looks.
    const claimOnce = (fork: Fork, traced: boolean) =>
      Effect.uninterruptibleMask((restore) =>
        Effect.gen(function* () {
          yield* restore(unpaused.await)
          yield* restore(live)
          const wanted = demand()
          if (wanted <= 0 || stopping) return false
          const { jobs, lease } = yield* claim(wanted, restore)
          // A limited queue's claim may come back short because of the limit, not for want of
          // jobs: finished jobs must wake it, or it would refill only at the next poll.
          backlog = jobs.length === wanted || (options.limits !== undefined && jobs.length > 0)
          for (const job of jobs) {
            running++
            held++
            if (job.rescues > 0) suspectsRunning++
            start(job, lease, traced, fork)
          }
          return backlog
        }),
      )

    const run = Effect.gen(function* () {
      // Captured once per loop: forking through a ready runtime is much cheaper per job. Each
      // job's fiber carries the job id in its log annotations.
      const runFork = Runtime.runFork(yield* Effect.runtime<never>())
      const annotations = yield* FiberRef.get(FiberRef.currentLogAnnotations)
      const fork: Fork = (id, attempt) =>
        runFork(attempt, {
          updateRefs: (refs, fiberId) =>
            FiberRefs.updateAs(refs, {
              fiberId,
              fiberRef: FiberRef.currentLogAnnotations,
              value: HashMap.set(annotations, "job", id as unknown),
            }),
        })
      const traced = options.tracing ?? (yield* Effect.tracer) !== builtInTracer
      return yield* Effect.forever(
        Effect.flatMap(claimOnce(fork, traced), (more) =>
          more
            ? Effect.void
            : Effect.asVoid(Effect.raceFirst(Queue.take(wakeups), Effect.sleep(options.pollInterval))),
        ),
      )
    }).pipe(Effect.annotateLogs({ queue: options.name })) as Effect.Effect<never>

    const awaitIdle = awaitEmpty(pool)
    const shutdown = Effect.suspend(() => {
      stopping = true
      return drain(pool, options)
    })

    return {
      name: options.name,
      status: Effect.sync(() => ({ name: options.name, limit, running: pool.size, paused })),
      pause: Effect.zipRight(
        Effect.sync(() => {
          paused = true
        }),
        unpaused.close,
      ),
      resume: Effect.zipRight(
        Effect.sync(() => {
          paused = false
        }),
        Effect.zipRight(unpaused.open, wake),
      ),
      scale: (n) =>
        Effect.zipRight(
          Effect.sync(() => {
            limit = n
          }),
          wake,
        ),
      wake,
      wakeAt,
      has: (id) => pool.get(id) !== undefined,
      interruptJob: (id) =>
        Effect.gen(function* () {
          const fiber = pool.get(id)
          if (fiber === undefined) return false
          yield* Fiber.interrupt(fiber)
          return true
        }),
      awaitIdle,
      shutdown,
      run,
    }
  })
