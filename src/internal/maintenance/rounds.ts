/**
 * The leader's rounds of maintenance. Each round works in bounded batches and goes on while
 * a batch comes back full, so a backlog is cleared without one long statement.
 *
 * Every round compares times other nodes wrote (due times, finish times, heartbeats), so its
 * "now" is the database's, never this node's clock, which may be off.
 */
import { Duration, Effect } from "effect"
import type { JobState } from "../../JobRecord.js"
import { retryDatabase } from "../store/retryDatabase.js"
import type { Store } from "../store/store.js"

const untilShort = <E, R>(batch: Effect.Effect<number, E, R>, size: number): Effect.Effect<void, E, R> =>
  Effect.flatMap(batch, (done) => (done < size ? Effect.void : untilShort(batch, size)))

/** Scheduled and retryable jobs that are due become available (their queues are woken). */
export const stage = (store: Store, batchSize = 5000) =>
  untilShort(
    store.now.pipe(
      Effect.flatMap((now) => store.stage(now, batchSize)),
      retryDatabase("staging due jobs"),
      Effect.map((staged) => staged.reduce((n, s) => n + s.count, 0)),
    ),
    batchSize,
  )

/** Finished jobs past their retention are deleted. */
export const prune = (
  store: Store,
  retention: ReadonlyArray<
    readonly [Extract<JobState, "completed" | "cancelled" | "discarded">, Duration.Duration]
  >,
  batchSize: number,
) =>
  Effect.forEach(
    retention,
    ([state, keep]) =>
      untilShort(
        store.now.pipe(
          Effect.flatMap((now) =>
            store.prune(state, new Date(now.getTime() - Duration.toMillis(keep)), batchSize),
          ),
          retryDatabase(`pruning ${state} jobs`),
        ),
        batchSize,
      ),
    { discard: true },
  )

/** Jobs left executing by nodes silent for `nodeTimeout` are made retryable, or discarded. */
export const rescue = (store: Store, nodeTimeout: Duration.Duration, maxRescues: number, batchSize = 1000) =>
  untilShort(
    Effect.gen(function* () {
      const rescued = yield* store
        .rescue(Duration.toMillis(nodeTimeout), maxRescues, batchSize)
        .pipe(retryDatabase("rescuing orphaned jobs"))
      if (rescued.length > 0) {
        yield* Effect.logWarning(
          `rescued ${rescued.length} job(s) left executing by stopped nodes: ${rescued.map((r) => `${r.id} → ${r.state}`).join(", ")}`,
        )
      }
      return rescued.length
    }),
    batchSize,
  )

/**
 * Every job leaves two dead row versions behind (claim and finish). Without a vacuum they stay:
 * the claim's index scans slow down, and PGlite's memory grows. So the leader vacuums the jobs
 * table when nothing else does (`auto`: on PGlite, or on a server whose autovacuum is off), or
 * always.
 */
export const vacuum = (store: Store, when: "auto" | "always") =>
  Effect.gen(function* () {
    if (when === "auto" && (yield* store.autovacuumRuns)) return false
    yield* store.vacuum
    return true
  }).pipe(retryDatabase("vacuuming the jobs table"))
