/**
 * Throughput and latency over the last day or month, from the leader's aggregates (the
 * job_stats table): a few hundred rows, whatever the number of jobs.
 */
import { Effect } from "effect"
import { toDatabaseError } from "../store/retryDatabase.js"
import * as Store from "../store/store.js"
import type * as Jobs from "./service.js"

const minute = 60_000
const hour = 60 * minute

/** Each window's stored rows and the span of one point: 5 minutes over a day, an hour over 30 days. */
const windows = {
  day: { period: "minute", spanMillis: 24 * hour, stepMillis: 5 * minute },
  month: { period: "hour", spanMillis: 30 * 24 * hour, stepMillis: hour },
} as const satisfies Record<Jobs.ThroughputWindow, unknown>

/** A duration in ms for a bucket: the geometric middle of its range, half a millisecond for bucket 0. */
const bucketValue = (bucket: number) => (bucket <= 0 ? 0.5 : 2 ** ((bucket - 0.5) / Store.bucketsPerDoubling))

/** Adds `histogram` into `into`. */
const addInto = (into: Map<number, number>, histogram: Store.Histogram) => {
  for (const [key, n] of Object.entries(histogram)) {
    const bucket = Number(key)
    if (Number.isInteger(bucket) && Number.isFinite(n)) into.set(bucket, (into.get(bucket) ?? 0) + n)
  }
}

/**
 * The `p` quantile (0 < p ≤ 1) of a histogram, in ms, to within a bucket (about ±9%); null
 * when it is empty.
 */
export const percentile = (histogram: ReadonlyMap<number, number>, p: number): number | null => {
  const total = Array.from(histogram.values()).reduce((sum, n) => sum + n, 0)
  if (total <= 0) return null
  const rank = Math.max(1, Math.ceil(p * total))
  let seen = 0
  for (const bucket of Array.from(histogram.keys()).sort((a, b) => a - b)) {
    seen += histogram.get(bucket)!
    if (seen >= rank) return bucketValue(bucket)
  }
  return null
}

/** The stored rows of one window as points of its step, every step present (zeros where none ran). */
export const toPoints = (
  rows: ReadonlyArray<Store.StatsRow>,
  from: number,
  to: number,
  stepMillis: number,
): ReadonlyArray<Jobs.ThroughputPoint> => {
  const steps = Math.max(0, Math.ceil((to - from) / stepMillis))
  const sums = Array.from({ length: steps }, () => ({
    completed: 0,
    failed: 0,
    cancelled: 0,
    wait: new Map<number, number>(),
    run: new Map<number, number>(),
  }))
  for (const row of rows) {
    const index = Math.floor((row.start.getTime() - from) / stepMillis)
    const sum = sums[index]
    if (sum === undefined) continue
    sum.completed += row.completed
    sum.failed += row.failed
    sum.cancelled += row.cancelled
    addInto(sum.wait, row.wait)
    addInto(sum.run, row.run)
  }
  return sums.map((sum, index) => ({
    start: new Date(from + index * stepMillis),
    completed: sum.completed,
    failed: sum.failed,
    cancelled: sum.cancelled,
    waitP50: percentile(sum.wait, 0.5),
    waitP95: percentile(sum.wait, 0.95),
    runP50: percentile(sum.run, 0.5),
    runP95: percentile(sum.run, 0.95),
  }))
}

/** The window's points, up to the database's now. */
export const throughput = (store: Store.Store, window: Jobs.ThroughputWindow) =>
  Effect.gen(function* () {
    const { period, spanMillis, stepMillis } = windows[window]
    const now = (yield* store.now).getTime()
    const to = Math.floor(now / stepMillis) * stepMillis + stepMillis
    const from = to - spanMillis
    const rows = yield* store.readStats(period, new Date(from))
    return { window, stepMillis, points: toPoints(rows, from, to, stepMillis) } satisfies Jobs.Throughput
  }).pipe(
    Effect.mapError(toDatabaseError("reading the throughput")),
    Effect.withSpan("Jobs.throughput", { attributes: { window }, captureStackTrace: false }),
  )
