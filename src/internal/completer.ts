/**
 * Writes attempt outcomes in batches: whatever has finished since the last write goes out
 * in one statement, so under load many completions cost one round trip, and when idle a
 * completion is written at once. A write the database refuses is retried until it lands;
 * an outcome whose lease no longer matches (the job was rescued, cancelled or taken by
 * another node) is rejected by the statement itself and logged.
 */
import { Clock, Deferred, Effect, Queue, Schedule } from "effect"
import { databaseRetrySchedule } from "./retryDatabase.js"
import type { Outcome, Store } from "./store.js"

type Entry =
  | { readonly _tag: "Outcome"; readonly outcome: Outcome; readonly onApplied: () => void }
  | { readonly _tag: "Barrier"; readonly done: Deferred.Deferred<void> }

export interface Completer {
  /** Queues an outcome; `onApplied` runs once it is written (not if the lease was stale). */
  readonly submit: (outcome: Outcome, onApplied: () => void) => Effect.Effect<void>
  /** Waits until everything submitted before this call has been written. */
  readonly barrier: Effect.Effect<void>
  /** The writer loop; run it supervised. */
  readonly run: Effect.Effect<never>
  /** Writes what is left; for shutdown. */
  readonly flushRemaining: Effect.Effect<void>
}

export const make = (store: Store, maxBatch: number): Effect.Effect<Completer> =>
  Effect.gen(function* () {
    const queue = yield* Queue.unbounded<Entry>()

    const write = (entries: ReadonlyArray<Entry>, retry: Schedule.Schedule<unknown, unknown>) =>
      Effect.gen(function* () {
        const outcomes: Array<Extract<Entry, { _tag: "Outcome" }>> = []
        const barriers: Array<Deferred.Deferred<void>> = []
        for (const entry of entries) {
          if (entry._tag === "Outcome") outcomes.push(entry)
          else barriers.push(entry.done)
        }
        if (outcomes.length > 0) {
          const now = new Date(yield* Clock.currentTimeMillis)
          let retried = false
          const applied = yield* store
            .finish(
              outcomes.map((e) => e.outcome),
              now,
            )
            .pipe(
              Effect.tapError((error) =>
                Effect.sync(() => {
                  retried = true
                }).pipe(
                  Effect.zipRight(
                    Effect.logWarning(`writing job outcomes failed; retrying: ${error.message}`),
                  ),
                ),
              ),
              Effect.retry(retry),
            )
          for (const entry of outcomes) {
            if (applied.has(entry.outcome.id)) entry.onApplied()
            else
              yield* (
                retried
                  ? // The failed write may have committed before its connection broke.
                    Effect.logInfo(
                      `outcome for job ${entry.outcome.id} was already written or is no longer held`,
                    )
                  : Effect.logWarning(
                      `outcome for job ${entry.outcome.id} rejected: the job is no longer held by this attempt's lease`,
                    )
              ).pipe(Effect.annotateLogs({ job: entry.outcome.id, outcome: entry.outcome.kind }))
          }
        }
        for (const done of barriers) yield* Deferred.succeed(done, undefined)
      })

    const run = Effect.forever(
      Effect.flatMap(Queue.takeBetween(queue, 1, maxBatch), (chunk) =>
        write(Array.from(chunk), databaseRetrySchedule).pipe(
          // Stopped mid-write (shutdown): hand the batch back so the final flush writes it.
          Effect.onInterrupt(() => Queue.offerAll(queue, chunk)),
        ),
      ),
    ) as Effect.Effect<never>

    // At shutdown a dead database must not hold the process forever.
    const flushRemaining = Effect.gen(function* () {
      while (true) {
        const chunk = yield* Queue.takeUpTo(queue, maxBatch)
        if (chunk.length === 0) return
        yield* write(Array.from(chunk), Schedule.exponential("50 millis").pipe(Schedule.upTo("5 seconds")))
      }
    }).pipe(Effect.catchAll((error) => Effect.logError("could not write job outcomes at shutdown", error)))

    return {
      submit: (outcome, onApplied) => Queue.offer(queue, { _tag: "Outcome", outcome, onApplied }),
      barrier: Effect.flatMap(Deferred.make<void>(), (done) =>
        Effect.zipRight(Queue.offer(queue, { _tag: "Barrier", done }), Deferred.await(done)),
      ),
      run,
      flushRemaining,
    }
  })
