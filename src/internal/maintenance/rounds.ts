/**
 * The leader's rounds of maintenance. Each round works in bounded batches and goes on while
 * a batch comes back full, so a backlog is cleared without one long statement.
 *
 * Every round compares times other nodes wrote (due times, finish times, heartbeats), so its
 * "now" is the database's, never this node's clock, which may be off.
 */
import { Clock, Duration, Effect, Metric } from "effect"
import type { JobState } from "../../JobRecord.js"
import { jobsGauge } from "../observer.js"
import { retryDatabase } from "../store/retryDatabase.js"
import type { Store } from "../store/store.js"
import type { Rescued } from "../store/upkeep.js"

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

type Finished = Extract<JobState, "completed" | "cancelled" | "discarded">

/**
 * Finished jobs past their retention are deleted: each queue's own retention where it has one,
 * the runtime's otherwise. A paused queue's wait until it resumes (paused cluster-wide, or on
 * every live node that runs it); `pruneQueue` prunes one anyway.
 */
export const prune = (
  store: Store,
  retention: ReadonlyArray<readonly [Finished, Duration.Duration]>,
  batchSize: number,
  nodeTimeoutMillis: number,
) =>
  Effect.gen(function* () {
    const stored = yield* store.storedQueues
    const nodes = yield* store.nodes(nodeTimeoutMillis)
    const runners = new Map<string, Array<boolean>>()
    for (const node of nodes) {
      for (const queue of node.queues) {
        runners.set(queue, [...(runners.get(queue) ?? []), node.queueConfigs[queue]?.paused === true])
      }
    }
    const paused = new Set([
      ...stored.filter((q) => q.paused).map((q) => q.name),
      ...Array.from(runners).flatMap(([queue, states]) => (states.every(Boolean) ? [queue] : [])),
    ])
    const own = stored.filter((q) => q.pruning !== null && Object.keys(q.pruning).length > 0)
    const skip = Array.from(new Set([...paused, ...own.map((q) => q.name)]))
    const pruneAll = (queue: string | null, keepOf: (state: Finished, keep: Duration.Duration) => number) =>
      Effect.forEach(
        retention,
        ([state, keep]) =>
          untilShort(
            Effect.flatMap(store.now, (now) =>
              store.pruneQueues(
                state,
                new Date(now.getTime() - keepOf(state, keep)),
                batchSize,
                queue,
                queue === null ? skip : [],
              ),
            ),
            batchSize,
          ),
        { discard: true },
      )
    yield* pruneAll(null, (_, keep) => Duration.toMillis(keep))
    for (const queue of own) {
      if (paused.has(queue.name)) continue
      yield* pruneAll(queue.name, (state, keep) => queue.pruning?.[state] ?? Duration.toMillis(keep))
    }
  }).pipe(retryDatabase("pruning finished jobs"))

/** Jobs left executing by nodes silent for `nodeTimeout` are made retryable, or discarded. */
export const rescue = (
  store: Store,
  nodeTimeout: Duration.Duration,
  maxRescues: number,
  batchSize = 1000,
  onRescued: (jobs: ReadonlyArray<Rescued>, at: number) => void = () => {},
) =>
  untilShort(
    Effect.gen(function* () {
      const rescued = yield* store
        .rescue(Duration.toMillis(nodeTimeout), maxRescues, batchSize)
        .pipe(retryDatabase("rescuing orphaned jobs"))
      if (rescued.length > 0) {
        onRescued(rescued, yield* Clock.currentTimeMillis)
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

/**
 * Samples how many jobs each queue has in each state into the `effect_jobs_jobs` gauge. A pair
 * counted before and gone now is set to zero, or the gauge would keep its last count forever.
 */
export const sampleStates = (store: Store) => {
  let previous = new Set<string>()
  return Effect.gen(function* () {
    const rows = yield* store.countByQueueAndState.pipe(retryDatabase("counting jobs by queue and state"))
    const seen = new Set<string>()
    const set = (queue: string, state: string, count: number) =>
      Metric.set(jobsGauge.pipe(Metric.tagged("queue", queue), Metric.tagged("state", state)), count)
    for (const row of rows) {
      seen.add(`${row.queue}\u0000${row.state}`)
      yield* set(row.queue, row.state, row.count)
    }
    for (const key of previous) {
      if (seen.has(key)) continue
      const [queue, state] = key.split("\u0000") as [string, string]
      yield* set(queue, state, 0)
    }
    previous = seen
  })
}

const minuteMillis = 60_000
const hourMillis = 60 * minuteMillis
const floorTo = (millis: number, step: number) => Math.floor(millis / step) * step

/**
 * Aggregates the finished jobs into the job_stats table: a row for each whole minute since
 * the last one stored (at most a day back), then each whole hour from its minutes; minutes
 * older than a day and hours older than 30 days are deleted. A minute is aggregated once
 * `settle` has passed after its end, since outcomes are written in batches.
 */
export const aggregateStats = (
  store: Store,
  options: { readonly settle?: Duration.Duration; readonly minutesPerStatement?: number } = {},
) =>
  Effect.gen(function* () {
    const settleMillis = Duration.toMillis(options.settle ?? Duration.seconds(10))
    const chunk = (options.minutesPerStatement ?? 60) * minuteMillis
    const settled = floorTo((yield* store.now).getTime() - settleMillis, minuteMillis)
    const dayAgo = settled - 24 * hourMillis
    const lastMinute = yield* store.lastStats("minute")
    // The first round starts at the first job finished in the last day: a new schema (every
    // test's, say) writes nothing until a job finishes.
    const first =
      lastMinute === null
        ? ((yield* store.firstFinishedSince(new Date(dayAgo)))?.getTime() ?? settled)
        : lastMinute.getTime() + minuteMillis
    for (let from = Math.max(dayAgo, floorTo(first, minuteMillis)); from < settled; from += chunk) {
      yield* store.aggregateMinutes(new Date(from), new Date(Math.min(settled, from + chunk)))
    }
    const lastHour = yield* store.lastStats("hour")
    const hoursFrom = floorTo(
      Math.max(dayAgo, lastHour === null ? dayAgo : lastHour.getTime() + hourMillis),
      hourMillis,
    )
    const hoursTo = floorTo(settled, hourMillis)
    if (hoursFrom < hoursTo) yield* store.rollUpHours(new Date(hoursFrom), new Date(hoursTo))
    yield* store.pruneStats("minute", new Date(dayAgo - hourMillis))
    yield* store.pruneStats("hour", new Date(hoursTo - 31 * 24 * hourMillis))
  }).pipe(retryDatabase("aggregating finished jobs"))
