/**
 * What every part of the comparison shares: the job payload, the clock, where the servers
 * are, and small statistics helpers. Imports nothing outside Node itself.
 */
import { readFileSync } from "node:fs"

/** Every system's jobs carry this: a sequence number and, for latency runs, when the insert began. */
export interface Payload {
  readonly n: number
  /** Wall-clock milliseconds (sub-millisecond precision) at which the insert call began; 0 when not timed. */
  readonly t: number
}

/** The one no-op handler: every system's handler calls it with the job's payload, and does nothing else. */
export type OnJob = (payload: Payload) => void

/** Wall-clock milliseconds with sub-millisecond precision, comparable across processes on one machine. */
export const now = (): number => performance.timeOrigin + performance.now()

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))

/** The database the comparison uses; created through `adminUrl` when missing. */
export const pgUrl = process.env.BENCH_PG_URL ?? "postgres://postgres@127.0.0.1:5432/bench_compare"
/** A database to connect to while creating `pgUrl`'s. */
export const adminUrl = process.env.BENCH_PG_ADMIN_URL ?? "postgres://postgres@127.0.0.1:5432/postgres"
export const pgDatabase = new URL(pgUrl).pathname.slice(1)

export const redis = {
  host: process.env.BENCH_REDIS_HOST ?? "127.0.0.1",
  port: Number(process.env.BENCH_REDIS_PORT ?? 6379),
  /** A database index of its own, flushed before every run. */
  db: Number(process.env.BENCH_REDIS_DB ?? 1),
}

/** The schemas the PostgreSQL systems keep their tables in (each system's default name). */
export const pgSchemas = ["effect_jobs", "graphile_worker", "pgboss", "bullmq"] as const

/** The queue (or task) name every system uses. */
export const queueName = "bench"

export const percentile = (sorted: ReadonlyArray<number>, p: number): number =>
  sorted.length === 0
    ? Number.NaN
    : sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!

export const round = (n: number, digits = 2): number => Math.round(n * 10 ** digits) / 10 ** digits

/**
 * Several runs of one configuration, summed up by their median: on a shared 2-core machine
 * one run of a few seconds can be 15 % off the next, so a ratio between two single runs
 * says little. `run` is the run nearest the median, whose CPU and settings stand for all.
 */
export interface Repeated<R> {
  readonly median: number
  readonly min: number
  readonly max: number
  readonly count: number
  readonly run: R
}

export const repeated = <R>(runs: ReadonlyArray<R>, value: (run: R) => number): Repeated<R> | undefined => {
  if (runs.length === 0) return undefined
  const values = runs.map(value).sort((a, b) => a - b)
  const middle = Math.floor(values.length / 2)
  const median = values.length % 2 === 1 ? values[middle]! : (values[middle - 1]! + values[middle]!) / 2
  const run = runs.reduce((a, b) => (Math.abs(value(b) - median) < Math.abs(value(a) - median) ? b : a))
  return { median, min: values[0]!, max: values[values.length - 1]!, count: values.length, run }
}

/** W1's runs of a system, as the results hold them. */
interface W1Result {
  readonly concurrency: number
  readonly jobs_per_s: number
  readonly [key: string]: unknown
}

/**
 * A system's W1 figure: the concurrency of its fastest run, and the median of every run at
 * that concurrency (the sweep's run and the repeats made at the fastest concurrency).
 */
export const w1Figure = <R extends W1Result>(runs: ReadonlyArray<R>) => {
  if (runs.length === 0) return undefined
  const fastest = runs.reduce((a, b) => (b.jobs_per_s > a.jobs_per_s ? b : a))
  const figure = repeated(
    runs.filter((r) => r.concurrency === fastest.concurrency),
    (r) => r.jobs_per_s,
  )!
  return { concurrency: fastest.concurrency, ...figure }
}

export interface LatencySummary {
  readonly samples: number
  readonly p50_ms: number
  readonly p90_ms: number
  readonly p99_ms: number
  readonly max_ms: number
  readonly mean_ms: number
}

export const summarize = (latencies: ReadonlyArray<number>): LatencySummary => {
  const sorted = [...latencies].sort((a, b) => a - b)
  const mean = sorted.reduce((sum, x) => sum + x, 0) / Math.max(1, sorted.length)
  return {
    samples: sorted.length,
    p50_ms: round(percentile(sorted, 50)),
    p90_ms: round(percentile(sorted, 90)),
    p99_ms: round(percentile(sorted, 99)),
    max_ms: round(sorted[sorted.length - 1] ?? Number.NaN),
    mean_ms: round(mean),
  }
}

/** Payloads `from`, `from + 1`, … of `count` untimed jobs. */
export const payloads = (from: number, count: number, t = 0): Array<Payload> =>
  Array.from({ length: count }, (_, i) => ({ n: from + i, t }))

const versionAt = (url: URL): string => (JSON.parse(readFileSync(url, "utf8")) as { version: string }).version

/** The installed version of one of the bench package's dependencies. */
export const benchPackageVersion = (name: string): string =>
  versionAt(new URL(`../node_modules/${name}/package.json`, import.meta.url))

/** The installed version of one of the repository's own dependencies. */
export const rootPackageVersion = (name: string): string =>
  versionAt(new URL(`../../node_modules/${name}/package.json`, import.meta.url))

/** The repository's own version. */
export const effectJobsVersion = (): string => versionAt(new URL("../../package.json", import.meta.url))

/**
 * Latencies kept as counts in buckets 1 % wide (from 1 µs to 100 s), so a long run's
 * percentiles cost a few kilobytes of memory instead of one number per job.
 */
export class Histogram {
  private static readonly base = Math.log(1.01)
  private static readonly minMs = 0.001
  // 1 % buckets from 1 µs to about 6 hours (1,900 of them, as before, ended at 162 s).
  private readonly counts = new Float64Array(2400)
  count = 0
  private sum = 0
  private max = 0

  record(ms: number): void {
    const clamped = Math.max(Histogram.minMs, ms)
    const index = Math.min(
      this.counts.length - 1,
      Math.floor(Math.log(clamped / Histogram.minMs) / Histogram.base),
    )
    this.counts[index]! += 1
    this.count++
    this.sum += ms
    if (ms > this.max) this.max = ms
  }

  /** The upper edge of the bucket holding the p-th percentile (at most 1 % above the true value). */
  percentile(p: number): number {
    const rank = Math.min(this.count, Math.max(1, Math.ceil((p / 100) * this.count)))
    let seen = 0
    for (let i = 0; i < this.counts.length; i++) {
      seen += this.counts[i]!
      if (seen >= rank) return Math.min(this.max, Histogram.minMs * Math.exp((i + 1) * Histogram.base))
    }
    return this.max
  }

  summary(): LatencySummary {
    return {
      samples: this.count,
      p50_ms: round(this.percentile(50)),
      p90_ms: round(this.percentile(90)),
      p99_ms: round(this.percentile(99)),
      max_ms: round(this.max),
      mean_ms: round(this.sum / Math.max(1, this.count)),
    }
  }
}
