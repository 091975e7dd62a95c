/**
 * The attempts of one queue on this node: each claimed job runs in a fiber of its own, kept
 * in the pool by job id, so a single job can be interrupted (cancel) and the whole pool
 * drained (shutdown). Its outcome goes to the completer; once written, the observer hears of
 * it and the job's slot counts as free.
 */
import { Cause, type Clock, Duration, Effect, Exit, Fiber, Option } from "effect"
import type * as Job from "../../Job.js"
import { JobTimeout, UnknownJobType, UnstorableOutcome } from "../../JobError.js"
import type { JobRecord } from "../../JobRecord.js"
import { FinishedAttempt } from "../observer.js"
import { Completed, type Outcome } from "../store/store.js"
import { type TraceLinking, traceAttempt } from "../tracing/attemptSpan.js"
import type { Counters, QueueOptions, RunnerEnvironment } from "./options.js"
import { decideOutcome, lastResort } from "./outcome.js"
import type { RunningFibers } from "./runningFibers.js"

export type Fork = (job: JobRecord, attempt: Effect.Effect<void>) => Fiber.RuntimeFiber<void>

/** What an attempt runs: the handler, under the definition's timeout and, if asked, a span. */
export const perform = (
  handlers: ReadonlyMap<string, Job.Handler<any>>,
  node: string,
  job: JobRecord,
  traced: boolean,
  linking: TraceLinking = "link",
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
  return traced ? traceAttempt(run, job, linking) : run
}

/** Waits until no attempt runs. Attempt fibers never fail (every exit becomes an outcome), so neither does this. */
export const awaitEmpty = (pool: RunningFibers) =>
  Effect.whileLoop({
    while: () => pool.size > 0,
    body: () => Fiber.await(pool.any()!),
    step: () => {},
  })

/** Lets running jobs finish up to the shutdown timeout, then interrupts the rest (they are given back). */
export const drain = (pool: RunningFibers, options: QueueOptions) =>
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

/** Starts one claimed job; called by the claim loop for each job of a claim. */
export type Start = (job: JobRecord, lease: string, traced: boolean, fork: Fork) => void

/**
 * Builds the queue's `start`, once. Everything it returns runs on the per-job path, so it is
 * built from closures over the queue's counters rather than from Effect steps.
 */
export const makeStart = (
  options: QueueOptions,
  env: RunnerEnvironment,
  defaultBackoff: Job.Definition["backoff"],
  clock: Clock.Clock,
  pool: RunningFibers,
  counters: Counters,
  wakeUnsafe: () => void,
): Start => {
  const { completer, observer, node, handlers, journal } = env
  // Refill in batches: wait until half the slots are free unless the queue is idle.
  const refill = () => {
    if (counters.backlog && counters.demand() >= Math.ceil(counters.limit / 2)) wakeUnsafe()
  }
  /** A job's outcome is settled: written, or refused for a stale lease. */
  const release = () => {
    counters.held--
    refill()
  }

  /** What the handler reported goes out before its outcome, which ends its hold on the row. */
  const afterReports = <E>(job: JobRecord, next: () => Effect.Effect<void, E>) => {
    const reports = journal?.flush(job)
    return reports === undefined ? next() : Effect.zipRight(reports, Effect.suspend(next))
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
  return (job, lease, traced, fork) => {
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
    const succeed = (result: unknown) => {
      const finishedAt = clock.unsafeCurrentTimeMillis()
      const unstorable = conclude(job, new Completed(job.id, lease, result), startedAt, finishedAt)
      if (unstorable === undefined) {
        concluded = true
        return Effect.void
      }
      return fail(Cause.fail(new UnstorableOutcome({ reason: unstorable })), finishedAt)
    }
    const attempt = Effect.suspend(() => {
      startedAt = clock.unsafeCurrentTimeMillis()
      observer.started(job, startedAt)
      return Effect.matchCauseEffect(perform(handlers, node, job, traced, options.traceLinking), {
        onSuccess: (result) => afterReports(job, () => succeed(result)),
        onFailure: (cause) => afterReports(job, () => fail(cause, clock.unsafeCurrentTimeMillis())),
      })
    })
    const giveBack = () =>
      completer.offer(
        { kind: "released", id: job.id, lease },
        job.attempt,
        clock.unsafeCurrentTimeMillis(),
        release,
      )
    // A claim under way when the queue was paused may return jobs inserted after the pause
    // returned: they go back too, so a pause stops every start from the moment it returns.
    if (counters.closed || counters.paused) {
      counters.running--
      if (job.rescues > 0) counters.suspectsRunning--
      giveBack()
      return
    }
    const fiber = fork(job, attempt)
    const slot = pool.add(job.id, fiber, job.type)
    // Called at once when the fiber has already finished.
    fiber.addObserver((exit) => {
      pool.remove(slot)
      journal?.forget(job)
      if (job.rescues > 0) counters.suspectsRunning--
      if (!concluded) {
        if (Exit.isFailure(exit) && !Cause.isInterrupted(exit.cause)) {
          const now = clock.unsafeCurrentTimeMillis()
          conclude(job, lastResort(job, lease, exit.cause, now), startedAt, now)
        } else giveBack()
      }
      counters.running--
      refill()
    })
  }
}
