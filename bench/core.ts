/**
 * `npm run bench`: burns down no-op jobs, times bulk insert and insert-to-start latency,
 * on local PostgreSQL (DATABASE_URL, default 127.0.0.1:5432/postgres) and on in-memory
 * PGlite. Ends with one JSON line per engine.
 *
 * Options (environment): BENCH_JOBS (default 50000), BENCH_LATENCY_SAMPLES (1000),
 * BENCH_CONCURRENCY (500), BENCH_ENGINES ("postgres,pglite").
 */
import { SqlClient } from "@effect/sql/SqlClient"
import { Deferred, Effect, Layer, Logger, LogLevel, Schema } from "effect"
import { Job, Jobs, JobsPg, JobsPglite } from "effect-jobs"

const total = Number(process.env.BENCH_JOBS ?? 50_000)
const samples = Number(process.env.BENCH_LATENCY_SAMPLES ?? 1000)
const concurrency = Number(process.env.BENCH_CONCURRENCY ?? 500)
const engines = (process.env.BENCH_ENGINES ?? "postgres,pglite").split(",")
const url = process.env.DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/postgres"
const schema = "effect_jobs_bench"

const Noop = Job.make("noop", { args: Schema.Struct({ n: Schema.Number }), queue: "bench" })
let onStart: ((n: number) => void) | undefined
const noop = Noop.handler(({ args }) =>
  Effect.sync(() => {
    onStart?.(args.n)
  }),
)

const percentile = (sorted: ReadonlyArray<number>, p: number) =>
  sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!
const round = (n: number, digits = 2) => Math.round(n * 10 ** digits) / 10 ** digits

const run = (engine: string) =>
  Effect.gen(function* () {
    const sql = yield* SqlClient
    yield* sql.unsafe(`DROP SCHEMA IF EXISTS ${schema} CASCADE`)
    const result = yield* Effect.scoped(
      Effect.gen(function* () {
        const context = yield* Layer.build(
          Jobs.layer({
            schema,
            handlers: [noop],
            queues: { bench: { concurrency, paused: true } },
            prune: false,
          }),
        )
        const jobs = context.unsafeMap.get(Jobs.Jobs.key) as Jobs.Jobs["Type"]

        // Bulk insert, in batches of 5,000.
        const batch = 5000
        const insertStart = performance.now()
        for (let offset = 0; offset < total; offset += batch) {
          const size = Math.min(batch, total - offset)
          yield* jobs.insertMany(
            Noop,
            Array.from({ length: size }, (_, i) => ({ n: offset + i })),
          )
        }
        const insertSeconds = (performance.now() - insertStart) / 1000

        // Burn-down: everything is inserted; time from resume to the last completion written.
        const burnStart = performance.now()
        const cpuBefore = process.cpuUsage()
        yield* jobs.resumeQueue("bench")
        yield* jobs.flush("bench")
        const burnSeconds = (performance.now() - burnStart) / 1000
        const cpu = process.cpuUsage(cpuBefore)
        // How busy this process was during the burn-down: near 100 means the runtime is the limit.
        const cpuPercent = Math.round((cpu.user + cpu.system) / 1e4 / burnSeconds)
        const info = yield* jobs.queueInfo("bench")
        if (info.states.completed.count !== total) {
          return yield* Effect.dieMessage(`expected ${total} completed, found ${info.states.completed.count}`)
        }

        // Latency: sequential inserts on an idle queue, insert call to handler start.
        const latencies: Array<number> = []
        for (let i = 0; i < samples; i++) {
          const started = yield* Deferred.make<number>()
          onStart = (n) => {
            if (n === -1 - i) Deferred.unsafeDone(started, Effect.succeed(performance.now()))
          }
          const before = performance.now()
          yield* jobs.insert(Noop, { n: -1 - i })
          latencies.push((yield* Deferred.await(started)) - before)
        }
        onStart = undefined
        latencies.sort((a, b) => a - b)
        return {
          engine,
          jobs: total,
          concurrency,
          jobs_per_s: Math.round(total / burnSeconds),
          process_cpu_pct: cpuPercent,
          insert_per_s: Math.round(total / insertSeconds),
          latency_p50_ms: round(percentile(latencies, 50)),
          latency_p99_ms: round(percentile(latencies, 99)),
          latency_max_ms: round(latencies[latencies.length - 1]!),
        }
      }),
    )
    yield* sql.unsafe(`DROP SCHEMA IF EXISTS ${schema} CASCADE`)
    return result
  })

const layers: Record<string, Layer.Layer<SqlClient | import("effect-jobs").Listener.Listener, unknown>> = {
  postgres: JobsPg.layer({ url, maxConnections: 10 }),
  pglite: JobsPglite.layer(),
}

const main = Effect.gen(function* () {
  const results = []
  for (const engine of engines) {
    yield* Effect.logInfo(`benchmarking ${engine}: ${total} jobs, concurrency ${concurrency}`)
    results.push(yield* run(engine).pipe(Effect.provide(layers[engine]!)))
  }
  for (const result of results) console.log(JSON.stringify(result))
}).pipe(Logger.withMinimumLogLevel(LogLevel.Info))

Effect.runPromise(main as Effect.Effect<void, unknown>).catch((error) => {
  console.error(error)
  process.exitCode = 1
})
