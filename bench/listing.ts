/**
 * `npm run bench:listing`: listings, counts and bulk actions over a large jobs table on local
 * PostgreSQL (DATABASE_URL, default 127.0.0.1:5432/postgres), and what the filter indexes
 * cost the path every job takes (insert, claim, complete). Ends with one JSON line.
 *
 * Options (environment): BENCH_ROWS (default 1,000,000), BENCH_PATH_JOBS (100,000),
 * BENCH_PATH_ROUNDS (2; 0 skips the job path).
 */
import { SqlClient } from "@effect/sql/SqlClient"
import { Context, Duration, Effect, Layer, Logger, LogLevel, Schema } from "effect"
import { Job, Jobs, JobsPg } from "effect-jobs"
import { migrate } from "../src/internal/store/migrations.js"
import * as Store from "../src/internal/store/store.js"
import { seed } from "./seed.js"

const rows = Number(process.env.BENCH_ROWS ?? 1_000_000)
const pathJobs = Number(process.env.BENCH_PATH_JOBS ?? 100_000)
const pathRounds = Number(process.env.BENCH_PATH_ROUNDS ?? 2)
const url = process.env.DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/postgres"
const schema = "effect_jobs_bench_listing"

const Noop = Job.make("t3", { args: Schema.Struct({ n: Schema.Number }) })

const round = (n: number, digits = 1) => Math.round(n * 10 ** digits) / 10 ** digits

/** The median of five runs, in milliseconds. */
const time = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
  Effect.gen(function* () {
    const runs: Array<number> = []
    let last: A | undefined
    for (let i = 0; i < 5; i++) {
      const start = performance.now()
      last = yield* effect
      runs.push(performance.now() - start)
    }
    runs.sort((a, b) => a - b)
    return { ms: round(runs[2]!, 2), last: last! }
  })

const listings = (jobs: Jobs.Jobs["Type"], store: Store.Store) =>
  Effect.gen(function* () {
    const hourAgo = new Date(Date.now() - 3_600_000)
    const weekAgo = new Date(Date.now() - 7 * 86_400_000)
    const cases: Record<string, Jobs.ListOptions> = {
      "newest 50, no filter": {},
      "state discarded (1 %)": { state: "discarded" },
      "state available (1 %), one queue": { state: "available", queue: "q2" },
      "args user.id (10 rows)": { args: { user: { id: 4242 } } },
      "type + args user.id (10 rows)": { type: "t2", args: { user: { id: 4242 } } },
      "meta schedule (0.1 %)": { schedule: "nightly" },
      "node (12 %)": { node: "node-3" },
      "resource type (1 %)": { resource: { type: "post" } },
      "resource id (1 row)": { resource: { type: "post", id: "500000" } },
      "error text (0.005 %)": { error: "mailbox" },
      "error text, no match (whole table)": { error: "no such text" },
      "inserted in the last hour": { inserted: { from: hourAgo } },
      "inserted a week ago, one hour": {
        inserted: { from: weekAgo, to: new Date(weekAgo.getTime() + 3_600_000) },
      },
      "finished in the last hour": { finished: { from: hourAgo } },
    }
    const results: Record<string, { ms: number; rows: number }> = {}
    for (const [name, options] of Object.entries(cases)) {
      const { ms, last } = yield* time(jobs.listPage({ ...options, limit: 50 }))
      results[name] = { ms, rows: last.jobs.length }
    }
    // The same depth by keyset and by OFFSET.
    const [middle] = yield* store.listJobs({ filter: {}, limit: 1, order: "newest", offset: rows / 2 })
    const deepKeyset = yield* time(
      store.listJobs({ filter: {}, limit: 50, order: "newest", after: middle!.id }),
    )
    const deepOffset = yield* time(jobs.list({ limit: 50, offset: rows / 2 }))
    results["page at half depth, by cursor"] = { ms: deepKeyset.ms, rows: deepKeyset.last.length }
    results["page at half depth, by offset"] = { ms: deepOffset.ms, rows: deepOffset.last.length }
    return results
  })

const counts = (jobs: Jobs.Jobs["Type"]) =>
  Effect.gen(function* () {
    const cases: Record<string, Jobs.ListOptions> = {
      "every job": {},
      "state completed": { state: "completed" },
      "state discarded": { state: "discarded" },
      "args user.id": { args: { user: { id: 4242 } } },
      "meta schedule": { schedule: "nightly" },
    }
    const results: Record<string, { ms: number; count: number; estimated: boolean }> = {}
    for (const [name, filter] of Object.entries(cases)) {
      const { ms, last } = yield* time(jobs.count(filter))
      results[name] = { ms, ...last }
    }
    return results
  })

const bulk = (jobs: Jobs.Jobs["Type"]) =>
  Effect.gen(function* () {
    const timed = <A, E>(effect: Effect.Effect<A, E>) =>
      Effect.map(Effect.timed(effect), ([duration, count]) => ({
        ms: round(Duration.toMillis(duration)),
        count,
      }))
    return {
      "cancel the scheduled jobs of one queue": yield* timed(
        jobs.cancelAll({ state: "scheduled", queue: "q3" }),
      ),
      "retry the discarded jobs of one queue": yield* timed(
        jobs.retryAll({ state: "discarded", queue: "q1" }),
      ),
      "delete a schedule's jobs": yield* timed(jobs.deleteAll({ schedule: "nightly" })),
    }
  })

/** Inserts, claims and completes `pathJobs` jobs through the store; answers each phase's time. */
const jobPath = (sql: SqlClient, withFilterIndexes: boolean) =>
  Effect.gen(function* () {
    yield* sql.unsafe(`DROP SCHEMA IF EXISTS ${schema}_path CASCADE`)
    yield* migrate(sql, `${schema}_path`)
    if (!withFilterIndexes) {
      yield* sql.unsafe(`DROP INDEX ${schema}_path.jobs_args_idx`)
      yield* sql.unsafe(`DROP INDEX ${schema}_path.jobs_meta_idx`)
    }
    const store = Store.make(sql, `${schema}_path`)
    const batch = 1000
    const insertStart = performance.now()
    for (let i = 0; i < pathJobs / batch; i++) {
      const args = Array.from({ length: batch }, (_, k) => ({ user: { id: i * batch + k }, n: k }))
      yield* store.insert(
        {
          queue: "q",
          type: "t",
          state: "available",
          priority: 0,
          maxAttempts: 3,
          meta: {},
          scheduledAt: new Date(0),
          args,
          argsJson: args.map((a) => JSON.stringify(a)),
        },
        new Date(),
      )
    }
    const insertMs = performance.now() - insertStart
    const claimStart = performance.now()
    let completeMs = 0
    for (;;) {
      const lease = crypto.randomUUID()
      const claimed = yield* store.claim("q", batch, "node", lease, new Date())
      if (claimed.length === 0) break
      const start = performance.now()
      yield* store.finishSerialized(
        claimed.map((job) => new Store.PlainCompletion(job.id, lease, new Date().toISOString())),
      )
      completeMs += performance.now() - start
    }
    const claimMs = performance.now() - claimStart - completeMs
    yield* sql.unsafe(`DROP SCHEMA ${schema}_path CASCADE`)
    const rate = (ms: number) => Math.round(pathJobs / (ms / 1000))
    return {
      insertPerSecond: rate(insertMs),
      claimPerSecond: rate(claimMs),
      completePerSecond: rate(completeMs),
    }
  })

const program = Effect.gen(function* () {
  const sql = yield* SqlClient
  yield* sql.unsafe(`DROP SCHEMA IF EXISTS ${schema} CASCADE`)
  yield* migrate(sql, schema)
  const seedStart = performance.now()
  yield* seed(sql, schema, rows)
  yield* sql.unsafe(`VACUUM ANALYZE ${schema}.jobs`)
  console.log(`seeded ${rows} jobs in ${round((performance.now() - seedStart) / 1000)} s`)
  const result = yield* Effect.scoped(
    Effect.gen(function* () {
      const context = yield* Layer.build(
        Jobs.layer({
          schema,
          queues: {},
          handlers: [Noop.handler(() => Effect.void)],
          // The seeded jobs stay as seeded: the leader's rounds would prune and vacuum them.
          prune: false,
          vacuum: false,
        }),
      )
      const jobs = Context.get(context, Jobs.Jobs)
      const store = Store.make(sql, schema)
      const listed = yield* listings(jobs, store)
      console.table(listed)
      const counted = yield* counts(jobs)
      console.table(counted)
      const bulked = yield* bulk(jobs)
      console.table(bulked)
      return { listed, counted, bulked }
    }),
  )
  yield* sql.unsafe(`DROP SCHEMA ${schema} CASCADE`)
  // Alternated, so a drift of the machine's speed falls on both alike.
  const path: Record<string, Array<unknown>> = { withFilterIndexes: [], withoutFilterIndexes: [] }
  for (let round = 0; round < pathRounds; round++) {
    path.withFilterIndexes!.push(yield* jobPath(sql, true))
    path.withoutFilterIndexes!.push(yield* jobPath(sql, false))
  }
  console.log(path)
  console.log(JSON.stringify({ rows, pathJobs, ...result, path }))
})

program.pipe(
  Effect.provide(JobsPg.layer({ url, maxConnections: 4 })),
  Logger.withMinimumLogLevel(LogLevel.Warning),
  Effect.runPromise,
)
