/**
 * The five workloads, each run inside a child process of its own (see child.ts). Every run
 * starts from a clean slate: all systems' schemas dropped, the database vacuumed and
 * checkpointed, the Redis database flushed.
 */
import type { ChildProcess } from "node:child_process"
import {
  Histogram,
  type LatencySummary,
  now,
  type Payload,
  payloads,
  round,
  sleep,
  summarize,
} from "./common.js"
import { resetStores, vacuumAnalyze } from "./control.js"
import { type Message, machineCpu, machineCpuPercent, reap, spawnChild, waitFor } from "./proc.js"
import { type Counts, type System, type SystemInfo, systemById } from "./systems/system.js"

export type Spec =
  | { readonly kind: "W1"; readonly system: string; readonly concurrency: number; readonly jobs: number }
  | {
      readonly kind: "W2"
      readonly system: string
      readonly concurrency: number
      readonly samples: number
      readonly warmup: number
    }
  | { readonly kind: "W2-producer"; readonly system: string }
  | { readonly kind: "W3"; readonly system: string; readonly jobs: number }
  | {
      readonly kind: "W4"
      readonly system: string
      readonly concurrency: number
      readonly rate: number
      readonly seconds: number
      readonly rssEverySeconds: number
    }
  | { readonly kind: "W4-producer"; readonly system: string; readonly rate: number; readonly seconds: number }
  | {
      readonly kind: "W5"
      readonly system: string
      readonly concurrency: number
      readonly jobs: number
      readonly processes: number
      readonly maxPool: number
    }
  | {
      readonly kind: "W5-worker"
      readonly system: string
      readonly concurrency: number
      readonly maxPool: number
    }

/** Jobs per bulk-insert call, everywhere bulk inserts are made. */
export const batchSize = 5000
const cores = 2

const reset = (info: SystemInfo) =>
  resetStores({ postgres: info.store === "postgres", redis: info.store === "redis" })

const make = async (info: SystemInfo, role: "worker" | "producer", concurrency: number, maxPool?: number) => {
  const module = await info.load()
  const system = module.make(maxPool === undefined ? { role, concurrency } : { role, concurrency, maxPool })
  await system.open()
  return system
}

const insertAll = async (system: System, jobs: number) => {
  for (let offset = 0; offset < jobs; offset += batchSize) {
    await system.insertMany(payloads(offset, Math.min(batchSize, jobs - offset)))
  }
}

const rssMb = () => round(process.memoryUsage().rss / 2 ** 20, 1)

/** W4's memory sample: the RSS, and how much of it is the JavaScript heap in use and reserved. */
const memorySample = (t_s: number) => {
  const m = process.memoryUsage()
  const mb = (n: number) => round(n / 2 ** 20, 1)
  return { t_s, rss_mb: mb(m.rss), heap_used_mb: mb(m.heapUsed), heap_total_mb: mb(m.heapTotal) }
}

/** Polls the store until it holds no unfinished job; fails after `limitMs`. */
const confirm = async (system: System, limitMs: number): Promise<Counts> => {
  const deadline = now() + limitMs
  for (;;) {
    const counts = await system.counts()
    if (counts.pending === 0) return counts
    if (now() > deadline) throw new Error(`jobs still pending after ${limitMs} ms: ${JSON.stringify(counts)}`)
    await sleep(5)
  }
}

/** Whether `done()` became true within `limitMs`. */
const within = (done: () => boolean, limitMs: number): Promise<boolean> =>
  new Promise((resolve) => {
    const deadline = now() + limitMs
    const tick = setInterval(() => {
      const finished = done()
      if (finished || now() > deadline) {
        clearInterval(tick)
        resolve(finished)
      }
    }, 1)
  })

/** Resolves once `done()` is true; fails when `progress()` has not moved for `stallMs`. */
const until = (done: () => boolean, progress: () => number, stallMs: number, what: string): Promise<void> =>
  new Promise((resolve, reject) => {
    let last = progress()
    let lastMoved = now()
    const tick = setInterval(() => {
      if (done()) {
        clearInterval(tick)
        resolve()
        return
      }
      const current = progress()
      if (current !== last) {
        last = current
        lastMoved = now()
      } else if (now() - lastMoved > stallMs) {
        clearInterval(tick)
        reject(new Error(`${what}: no progress for ${stallMs / 1000} s (at ${current})`))
      }
    }, 1)
  })

const checkOutcome = (counts: Counts, expected: number) => {
  if (counts.failed > 0) throw new Error(`${counts.failed} jobs failed`)
  if (counts.completed !== null && counts.completed !== expected) {
    throw new Error(`expected ${expected} completed jobs, the store has ${counts.completed}`)
  }
}

/** W1: all jobs inserted first; timed from the worker's start to the store showing every job done. */
const burnDown = async (spec: Extract<Spec, { kind: "W1" }>) => {
  const info = systemById(spec.system)
  await reset(info)
  const system = await make(info, "worker", spec.concurrency)
  await insertAll(system, spec.jobs)
  if (info.schema) await vacuumAnalyze(info.schema)

  let handled = 0
  let peakRss = rssMb()
  const sampler = setInterval(() => {
    peakRss = Math.max(peakRss, rssMb())
  }, 1000)
  const cpuBefore = process.cpuUsage()
  const machineBefore = machineCpu()
  const started = now()
  await system.start(() => {
    handled++
  })
  const startReturned = now()
  await until(
    () => handled >= spec.jobs,
    () => handled,
    60_000,
    "burn-down",
  )
  const allStarted = now()
  const counts = await confirm(system, 120_000)
  const finished = now()
  const cpu = process.cpuUsage(cpuBefore)
  const machine = machineCpuPercent(machineBefore, machineCpu(), cores)
  clearInterval(sampler)
  checkOutcome(counts, spec.jobs)
  const seconds = (finished - started) / 1000
  const store = await system.close()
  return {
    jobs: spec.jobs,
    concurrency: spec.concurrency,
    jobs_per_s: Math.round(spec.jobs / seconds),
    seconds: round(seconds, 3),
    /** How long the system's start call took (inside the timed span). */
    start_ms: round(startReturned - started, 1),
    /** From the last handler start to the store confirming every outcome. */
    confirm_ms: round(finished - allStarted, 1),
    duplicates: handled - spec.jobs,
    worker_cpu_pct: Math.round((cpu.user + cpu.system) / 1e4 / seconds),
    machine_cpu_pct: machine,
    peak_rss_mb: peakRss,
    settings: system.settings,
    store,
  }
}

/**
 * The offset of a child's clock from this process's (child minus parent), from the
 * quickest of 30 ping-pongs: wall clocks of two processes can differ by a millisecond.
 */
const clockOffset = async (child: ChildProcess): Promise<{ offset_ms: number; rtt_ms: number }> => {
  let best = { offset_ms: 0, rtt_ms: Number.POSITIVE_INFINITY }
  for (let i = 0; i < 30; i++) {
    const sent = now()
    const pong = waitFor(child, "pong", 10_000)
    child.send({ type: "ping" })
    const { t } = await pong
    const received = now()
    if (received - sent < best.rtt_ms)
      best = { offset_ms: t - (sent + received) / 2, rtt_ms: received - sent }
  }
  return { offset_ms: round(best.offset_ms, 3), rtt_ms: round(best.rtt_ms, 3) }
}

/** W2's producer, in a process of its own: one single insert for each "insert" message. */
const latencyProducer = async (spec: Extract<Spec, { kind: "W2-producer" }>) => {
  const system = await make(systemById(spec.system), "producer", 0)
  let inserting = Promise.resolve()
  const stopped = new Promise<void>((resolve) => {
    process.on("message", (message: Message) => {
      if (message.type === "insert") {
        inserting = inserting.then(() => system.insertOne({ n: message.n, t: now() }))
      } else if (message.type === "stop") resolve()
    })
  })
  process.send!({ type: "ready" })
  await stopped
  await inserting
  await system.close()
  return {}
}

/**
 * W2: sequential single inserts on an idle queue, each timed from the insert call to its
 * handler starting. The inserts come from a separate process (in this process for PGlite),
 * so no system gains from the insert and the worker sharing a process.
 */
const latency = async (spec: Extract<Spec, { kind: "W2" }>) => {
  const info = systemById(spec.system)
  await reset(info)
  const system = await make(info, "worker", spec.concurrency)
  let child: ChildProcess | undefined
  let clock = { offset_ms: 0, rtt_ms: 0 }
  if (info.store !== "pglite") {
    child = spawnChild({ kind: "W2-producer", system: spec.system })
    await waitFor(child, "ready", 60_000)
    clock = await clockOffset(child)
  }
  const offset = clock.offset_ms
  let waiting: { n: number; resolve: (ms: number) => void } | undefined
  await system.start((job) => {
    // The insert began at job.t on the producer's clock, job.t - offset on this one.
    if (job.t > 0 && waiting?.n === job.n) waiting.resolve(now() - (job.t - offset))
  })
  const latencies: Array<number> = []
  const total = spec.warmup + spec.samples
  try {
    for (let n = 0; n < total; n++) {
      const started = new Promise<number>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`job ${n} did not start within 30 s`)), 30_000)
        waiting = {
          n,
          resolve: (ms) => {
            clearTimeout(timer)
            resolve(ms)
          },
        }
      })
      if (child) child.send({ type: "insert", n })
      else await system.insertOne({ n, t: now() })
      const ms = await started
      if (n >= spec.warmup) latencies.push(ms)
      // Lets the previous job's outcome be written, so each insert meets an idle queue.
      await sleep(5)
    }
    if (child) {
      const done = waitFor(child, "result", 60_000)
      child.send({ type: "stop" })
      await done
      await reap(child)
    }
  } finally {
    if (child && child.exitCode === null && child.signalCode === null) child.kill("SIGKILL")
  }
  const counts = await confirm(system, 30_000)
  checkOutcome(counts, total)
  const store = await system.close()
  return {
    concurrency: spec.concurrency,
    warmup: spec.warmup,
    producer: child ? "a separate process" : "this process (PGlite)",
    clock,
    ...summarize(latencies),
    settings: system.settings,
    store,
  }
}

/** W3: bulk insert in batches of 5,000 with the system's bulk API, nothing consuming. */
const bulkInsert = async (spec: Extract<Spec, { kind: "W3" }>) => {
  const info = systemById(spec.system)
  await reset(info)
  const system = await make(info, "producer", 0)
  const cpuBefore = process.cpuUsage()
  const started = now()
  await insertAll(system, spec.jobs)
  const seconds = (now() - started) / 1000
  const cpu = process.cpuUsage(cpuBefore)
  const counts = await system.counts()
  if (counts.pending !== spec.jobs)
    throw new Error(`expected ${spec.jobs} stored jobs, found ${counts.pending}`)
  const store = await system.close()
  return {
    jobs: spec.jobs,
    batch: batchSize,
    inserts_per_s: Math.round(spec.jobs / seconds),
    seconds: round(seconds, 3),
    producer_cpu_pct: Math.round((cpu.user + cpu.system) / 1e4 / seconds),
    settings: system.settings,
    store,
  }
}

export interface ProducerReport {
  readonly inserted: number
  readonly seconds: number
  readonly achieved_rate: number
  /** The longest the producer ran behind its schedule. */
  readonly max_lag_ms: number
}

/**
 * Inserts at a fixed rate for `seconds`: every 10 ms, the jobs due by then in one bulk call,
 * each carrying the time that call began.
 */
const produce = async (
  insert: (jobs: ReadonlyArray<Payload>) => Promise<void>,
  rate: number,
  seconds: number,
): Promise<ProducerReport> => {
  const started = now()
  const end = started + seconds * 1000
  let inserted = 0
  let maxLag = 0
  for (;;) {
    const at = now()
    if (at >= end) break
    const due = Math.floor(((at - started) / 1000) * rate) - inserted
    if (due > 0) {
      await insert(payloads(inserted, due, at))
      inserted += due
    }
    const after = now()
    maxLag = Math.max(maxLag, after - at - 10)
    await sleep(Math.max(0, 10 - (after - at)))
  }
  const elapsed = (now() - started) / 1000
  return {
    inserted,
    seconds: round(elapsed, 2),
    achieved_rate: Math.round(inserted / elapsed),
    max_lag_ms: round(Math.max(0, maxLag), 1),
  }
}

/** W4's producer, in a process of its own. */
const producer = async (spec: Extract<Spec, { kind: "W4-producer" }>) => {
  const info = systemById(spec.system)
  const system = await make(info, "producer", 0)
  process.send!({ type: "ready" })
  await new Promise<void>((resolve) =>
    process.on("message", (message: Message) => {
      if (message.type === "go") resolve()
    }),
  )
  const report = await produce((jobs) => system.insertMany(jobs), spec.rate, spec.seconds)
  await system.close()
  return report
}

/**
 * W4: a fixed offered rate for a while. The worker process measures insert-to-start latency
 * and samples its own RSS; a separate producer process inserts (in this process for PGlite,
 * whose database lives here).
 */
const steadyState = async (spec: Extract<Spec, { kind: "W4" }>) => {
  const info = systemById(spec.system)
  await reset(info)
  const system = await make(info, "worker", spec.concurrency)
  const histogram = new Histogram()
  // The same latencies per window of rssEverySeconds by handler start: a drift shows as
  // windows whose percentiles grow while the offered rate stays the same.
  const windows: Array<Histogram> = []
  let windowOrigin = now()
  let handled = 0
  let offset = 0
  await system.start((job) => {
    handled++
    const at = now()
    // The insert began at job.t on the producer's clock, job.t - offset on this one.
    const latency = at - (job.t - offset)
    histogram.record(latency)
    const index = Math.max(0, Math.floor((at - windowOrigin) / (spec.rssEverySeconds * 1000)))
    let window = windows[index]
    if (window === undefined) {
      window = new Histogram()
      windows[index] = window
    }
    window.record(latency)
  })
  // The producer process is started and connected before the clock starts.
  let child: ChildProcess | undefined
  let clock = { offset_ms: 0, rtt_ms: 0 }
  if (info.store !== "pglite") {
    child = spawnChild({ kind: "W4-producer", system: spec.system, rate: spec.rate, seconds: spec.seconds })
    await waitFor(child, "ready", 60_000)
    clock = await clockOffset(child)
    offset = clock.offset_ms
  }
  const rss: Array<ReturnType<typeof memorySample>> = []
  const cpuBefore = process.cpuUsage()
  const machineBefore = machineCpu()
  const started = now()
  windowOrigin = started
  rss.push(memorySample(0))
  const sampler = setInterval(
    () => rss.push(memorySample(Math.round((now() - started) / 1000))),
    spec.rssEverySeconds * 1000,
  )
  let report: ProducerReport
  if (child) {
    const result = waitFor(child, "result", spec.seconds * 1000 + 120_000)
    child.send({ type: "go" })
    report = (await result).result as ProducerReport
    await reap(child)
  } else {
    report = await produce((jobs) => system.insertMany(jobs), spec.rate, spec.seconds)
  }
  const producerDone = now()
  // A system that fell behind gets half the run's length again to catch up. One still behind
  // then is reported as such, with the latencies of the jobs it did start: waiting for its
  // whole backlog could take longer than the run, and slow progress is still progress.
  const drainLimitMs = Math.max(60_000, (spec.seconds * 1000) / 2)
  const caughtUp = await within(() => handled >= report.inserted, drainLimitMs)
  const counts = caughtUp ? await confirm(system, 60_000) : undefined
  const drained = now()
  clearInterval(sampler)
  rss.push(memorySample(Math.round((drained - started) / 1000)))
  const cpu = process.cpuUsage(cpuBefore)
  const machine = machineCpuPercent(machineBefore, machineCpu(), cores)
  if (counts) checkOutcome(counts, report.inserted)
  const seconds = (drained - started) / 1000
  // Closing first: PostgreSQL publishes a backend's table statistics when it disconnects.
  const store = await system.close()
  await sleep(info.store === "postgres" ? 1000 : 0)
  return {
    concurrency: spec.concurrency,
    offered_rate: spec.rate,
    seconds: spec.seconds,
    producer: report,
    clock,
    processed: handled,
    drain_limit_ms: drainLimitMs,
    kept_up: caughtUp,
    // Jobs inserted but not yet started when the drain's time ran out.
    backlog_at_end: report.inserted - handled,
    drain_ms: caughtUp ? round(drained - producerDone, 1) : undefined,
    latency: histogram.summary() satisfies LatencySummary,
    latency_windows: Array.from(windows.entries()).flatMap(([index, window]) =>
      window === undefined
        ? []
        : [
            {
              t_s: index * spec.rssEverySeconds,
              samples: window.count,
              p50_ms: round(window.percentile(50)),
              p99_ms: round(window.percentile(99)),
            },
          ],
    ),
    rss_mb: rss,
    peak_rss_mb: Math.max(...rss.map((s) => s.rss_mb)),
    worker_cpu_pct: Math.round((cpu.user + cpu.system) / 1e4 / seconds),
    machine_cpu_pct: machine,
    settings: system.settings,
    store,
  }
}

/** W5's worker: opens, says ready, starts on "go", reports its count, stops on "stop". */
const scaleWorker = async (spec: Extract<Spec, { kind: "W5-worker" }>) => {
  const info = systemById(spec.system)
  const system = await make(info, "worker", spec.concurrency, spec.maxPool)
  let handled = 0
  let reported = 0
  const stopped = new Promise<void>((resolve) => {
    process.on("message", async (message: { type: string }) => {
      if (message.type === "go") {
        await system.start(() => {
          handled++
        })
      } else if (message.type === "stop") resolve()
    })
  })
  const reporter = setInterval(() => {
    if (handled !== reported) {
      reported = handled
      process.send!({ type: "handled", count: handled })
    }
  }, 10)
  process.send!({ type: "ready" })
  const cpuBefore = process.cpuUsage()
  await stopped
  clearInterval(reporter)
  const cpu = process.cpuUsage(cpuBefore)
  await system.close()
  return {
    handled,
    cpu_s: round((cpu.user + cpu.system) / 1e6, 2),
    rss_mb: rssMb(),
    settings: system.settings,
  }
}

/** W5: jobs inserted first, then `processes` worker processes started together on one database. */
const scaleOut = async (spec: Extract<Spec, { kind: "W5" }>) => {
  const info = systemById(spec.system)
  await reset(info)
  const system = await make(info, "producer", 0, spec.maxPool)
  await insertAll(system, spec.jobs)
  if (info.schema) await vacuumAnalyze(info.schema)
  const workers = Array.from({ length: spec.processes }, () =>
    spawnChild({
      kind: "W5-worker",
      system: spec.system,
      concurrency: spec.concurrency,
      maxPool: spec.maxPool,
    }),
  )
  try {
    const counts = new Array<number>(workers.length).fill(0)
    for (const [i, w] of workers.entries()) {
      w.on("message", (m: { type: string; count?: number }) => {
        if (m.type === "handled") counts[i] = m.count!
      })
    }
    await Promise.all(workers.map((w) => waitFor(w, "ready", 120_000)))
    const machineBefore = machineCpu()
    const started = now()
    for (const w of workers) w.send({ type: "go" })
    const total = () => counts.reduce((sum, c) => sum + c, 0)
    await until(() => total() >= spec.jobs, total, 60_000, "scale-out")
    const stored = await confirm(system, 120_000)
    const finished = now()
    const machine = machineCpuPercent(machineBefore, machineCpu(), cores)
    checkOutcome(stored, spec.jobs)
    const results = workers.map((w) => waitFor(w, "result", 120_000))
    for (const w of workers) w.send({ type: "stop" })
    const perWorker = (await Promise.all(results)).map(
      (m) =>
        m.result as { handled: number; cpu_s: number; rss_mb: number; settings: Record<string, unknown> },
    )
    await Promise.all(workers.map((w) => reap(w)))
    const seconds = (finished - started) / 1000
    await system.close()
    return {
      jobs: spec.jobs,
      processes: spec.processes,
      concurrency_per_process: spec.concurrency,
      max_pool_per_process: spec.maxPool,
      jobs_per_s: Math.round(spec.jobs / seconds),
      seconds: round(seconds, 3),
      duplicates: perWorker.reduce((sum, w) => sum + w.handled, 0) - spec.jobs,
      machine_cpu_pct: machine,
      per_process: perWorker.map(({ settings: _, ...rest }) => rest),
      settings: perWorker[0]?.settings,
    }
  } finally {
    for (const w of workers) if (w.exitCode === null && w.signalCode === null) w.kill("SIGKILL")
  }
}

export const runSpec = (spec: Spec): Promise<unknown> => {
  switch (spec.kind) {
    case "W1":
      return burnDown(spec)
    case "W2":
      return latency(spec)
    case "W2-producer":
      return latencyProducer(spec)
    case "W3":
      return bulkInsert(spec)
    case "W4":
      return steadyState(spec)
    case "W4-producer":
      return producer(spec)
    case "W5":
      return scaleOut(spec)
    case "W5-worker":
      return scaleWorker(spec)
  }
}
