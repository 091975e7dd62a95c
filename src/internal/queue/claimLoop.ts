/**
 * The dispatcher's loop: it claims up to the queue's demand in one statement, starts each
 * job in the worker pool, and sleeps until a wake-up or the poll interval when the queue ran
 * dry. Each claim starts at the dispatcher's claim position (claimPosition.ts), not at the
 * start of the claim index.
 */
import { randomUUID } from "node:crypto"
import {
  Clock,
  Context,
  DefaultServices,
  Effect,
  Either,
  FiberRef,
  FiberRefs,
  HashMap,
  Runtime,
  Schedule,
  Tracer,
} from "effect"
import { databaseRetrySchedule, retryDatabase } from "../store/retryDatabase.js"
import type { Store } from "../store/store.js"
import { asApp } from "../tracing/quiet.js"
import { claimStart } from "./claimPosition.js"
import type { Completer } from "./completer.js"
import { CurrentJournal, currentJob } from "./journal.js"
import type { Counters, QueueOptions, RunnerEnvironment } from "./options.js"
import type { Wakeups } from "./wakeups.js"
import type { Fork, Start } from "./workerPool.js"

/**
 * Effect's default tracer keeps spans in memory and exports them nowhere; a span per attempt
 * under it costs a large share of a no-op job and shows nothing.
 */
const builtInTracer = Context.get(DefaultServices.liveServices, Tracer.Tracer)

type Restore = <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.Effect<A, E, R>

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

/**
 * Claims with a fresh lease, retrying while the database is unreachable. A claim that
 * failed may still have committed (the connection broke after the commit), so before each
 * retry the jobs holding the failed claim's lease are looked up and, if any, run. Runs
 * uninterruptibly but for the statement itself and the waits (`restore`).
 */
const claim = (
  options: QueueOptions,
  env: RunnerEnvironment,
  counters: Counters,
  cursor: Wakeups["cursor"],
  demand: number,
  restore: Restore,
) =>
  Effect.gen(function* () {
    const { store, completer, node } = env
    const retries = yield* Schedule.driver(databaseRetrySchedule)
    while (true) {
      const lease = randomUUID()
      const now = new Date(yield* Clock.currentTimeMillis)
      // One job rescued before (a suspect) at a time on this node: see the claim statement.
      const suspects = counters.suspectsRunning === 0 ? 1 : 0
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
      cursor.signal(claimStart)
      yield* Effect.logWarning(`claiming jobs failed; retrying: ${result.left.message}`)
      yield* restore(Effect.orDie(retries.next(result.left)))
      const adopted = yield* restore(
        store.claimedWith(lease).pipe(retryDatabase("looking up an interrupted claim")),
      ).pipe(Effect.onInterrupt(() => abandon(store, completer, lease)))
      if (adopted.length > 0) return { jobs: adopted, lease }
    }
  })

/** The dispatcher loop of one queue, built once; run it supervised. */
export const makeClaimLoop = (
  options: QueueOptions,
  env: RunnerEnvironment,
  counters: Counters,
  wakeups: Wakeups,
  unpaused: Effect.Latch,
  start: Start,
): Effect.Effect<never> => {
  const live = env.live ?? Effect.void
  // Between a claim's commit and the forks that run its jobs nothing may interrupt: a job
  // claimed but never forked would stay `executing` on a live node, where no rescue looks.
  const claimOnce = (fork: Fork, traced: boolean) =>
    Effect.uninterruptibleMask((restore) =>
      Effect.gen(function* () {
        yield* restore(unpaused.await)
        yield* restore(live)
        const wanted = counters.demand()
        if (wanted <= 0 || counters.stopping) return false
        const { jobs, lease } = yield* claim(options, env, counters, wakeups.cursor, wanted, restore)
        // A limited queue's claim may come back short because of the limit, not for want of
        // jobs: finished jobs must wake it, or it would refill only at the next poll.
        counters.backlog = jobs.length === wanted || (options.limits !== undefined && jobs.length > 0)
        for (const job of jobs) {
          counters.running++
          counters.held++
          if (job.rescues > 0) counters.suspectsRunning++
          start(job, lease, traced, fork)
        }
        return counters.backlog
      }),
    )

  return Effect.gen(function* () {
    // Captured once per loop: forking through a ready runtime is much cheaper per job. Each
    // job's fiber carries the job id in its log annotations, and the job for `Job.progress`
    // and `Job.log`; the journal is the runtime's, set once.
    const runFork = Runtime.runFork(
      yield* asApp(
        env.journal === undefined
          ? Effect.runtime<never>()
          : Effect.provideService(Effect.runtime<never>(), CurrentJournal, env.journal),
      ),
    )
    const annotations = yield* FiberRef.get(FiberRef.currentLogAnnotations)
    const fork: Fork = (job, attempt) =>
      runFork(attempt, {
        // Both set on one copy of the runtime's refs, each as the fiber's only value: the
        // fiber is never joined, so it needs no stack of earlier values to merge back.
        updateRefs: (refs, fiberId) => {
          const locals = new Map(refs.locals)
          locals.set(FiberRef.currentLogAnnotations, [
            [fiberId, HashMap.set(annotations, "job", job.id as unknown)],
          ])
          locals.set(currentJob, [[fiberId, job]])
          return FiberRefs.unsafeMake(locals)
        },
      })
    const traced = options.tracing ?? (yield* Effect.tracer) !== builtInTracer
    // The loop's own statements are not traced, whichever fiber started the queue: under a
    // tracer each claim would start a trace of its own. The attempts are, through `runFork`.
    return yield* Effect.forever(
      Effect.flatMap(claimOnce(fork, traced), (more) => (more ? Effect.void : wakeups.idle())),
    ).pipe(Effect.withTracerEnabled(false))
  }).pipe(Effect.annotateLogs({ queue: options.name })) as Effect.Effect<never>
}
