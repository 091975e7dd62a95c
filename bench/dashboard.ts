/**
 * `npm run bench:dashboard`: the dashboard's pages over a large jobs table on local PostgreSQL
 * (DATABASE_URL, default 127.0.0.1:5432/postgres), rendered in process through its router, as
 * a request to the server would be, without the network. Each page: the median of five
 * requests after one warm-up. Ends with one JSON line.
 *
 * Options (environment): BENCH_ROWS (default 1,000,000). The table is kept between runs in its
 * own schema, and seeded again only when it holds another number of jobs.
 */
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as NodeFileSystem from "@effect/platform-node/NodeFileSystem"
import { SqlClient } from "@effect/sql/SqlClient"
import { Context, Effect, Layer, Logger, LogLevel } from "effect"
import { JobsClient, JobsPg } from "effect-jobs"
import * as Dashboard from "effect-jobs/dashboard"
import { migrate } from "../src/internal/store/migrations.js"
import { seed } from "./seed.js"

const rows = Number(process.env.BENCH_ROWS ?? 1_000_000)
const url = process.env.DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/postgres"
const schema = "effect_jobs_bench_dashboard"

/** The table of BENCH_ROWS jobs, seeded unless it is there already. */
const table = Effect.gen(function* () {
  const sql = yield* SqlClient
  const present = yield* sql.unsafe<{ n: string }>(
    `SELECT count(*) AS n FROM pg_tables WHERE schemaname = $1 AND tablename = 'jobs'`,
    [schema],
  )
  if (Number(present[0]?.n) > 0) {
    const [counted] = yield* sql.unsafe<{ n: string }>(`SELECT count(*) AS n FROM ${schema}.jobs`)
    if (Number(counted?.n) === rows) {
      // A table kept from an earlier version of the library gets the migrations it lacks.
      yield* migrate(sql, schema)
      return yield* sql.unsafe(`ANALYZE ${schema}.jobs`)
    }
  }
  yield* sql.unsafe(`DROP SCHEMA IF EXISTS ${schema} CASCADE`)
  yield* migrate(sql, schema)
  const start = performance.now()
  yield* seed(sql, schema, rows)
  yield* sql.unsafe(`VACUUM ANALYZE ${schema}.jobs`)
  console.log(`seeded ${rows} jobs in ${Math.round((performance.now() - start) / 1000)} s`)
})

const program = Effect.gen(function* () {
  yield* table
  const sql = yield* SqlClient
  const [some] = yield* sql.unsafe<{ id: string }>(
    `SELECT id FROM ${schema}.jobs WHERE state = 'discarded' ORDER BY id DESC LIMIT 1`,
  )
  // Built once the table is there: the client checks the schema's migrations.
  const client = yield* Layer.build(Layer.mergeAll(JobsClient.layer({ schema }), NodeFileSystem.layer))
  const router = yield* Effect.provide(Dashboard.router({ schema }), client)
  const request = (path: string) =>
    Effect.gen(function* () {
      const start = performance.now()
      const response = yield* router.pipe(
        Effect.provideService(
          HttpServerRequest.HttpServerRequest,
          HttpServerRequest.fromWeb(new Request(`http://127.0.0.1${path}`)),
        ),
      )
      const body = yield* Effect.promise(() => HttpServerResponse.toWeb(response).text())
      const ms = performance.now() - start
      if (response.status !== 200) return yield* Effect.dieMessage(`${path} answered ${response.status}`)
      return { ms, bytes: body.length }
    })
  const pages: ReadonlyArray<readonly [string, string]> = [
    ["overview", "/"],
    ["jobs", "/jobs"],
    ["jobs, state discarded", "/jobs?state=discarded"],
    ["jobs, queue q3 and type t13", "/jobs?queue=q3&type=t13"],
    ["jobs, error text", "/jobs?state=discarded&error=Mailbox"],
    ["jobs, state completed", "/jobs?state=completed"],
    ["job detail", `/jobs/${some?.id ?? 1}`],
    ["queues", "/queues"],
    ["schedules", "/schedules"],
    ["tasks", "/tasks"],
  ]
  const result: Array<{
    page: string
    path: string
    medianMs: number
    minMs: number
    maxMs: number
    bytes: number
  }> = []
  for (const [page, path] of pages) {
    yield* request(path)
    const runs: Array<number> = []
    let bytes = 0
    for (let i = 0; i < 5; i++) {
      const run = yield* request(path)
      runs.push(run.ms)
      bytes = run.bytes
    }
    runs.sort((a, b) => a - b)
    const round = (n: number) => Math.round(n * 10) / 10
    result.push({
      page,
      path,
      medianMs: round(runs[2]!),
      minMs: round(runs[0]!),
      maxMs: round(runs[4]!),
      bytes,
    })
  }
  console.table(result)
  // What the slow pages wait on: the client's reads they make, timed alone.
  const jobs = Context.get(client, JobsClient.JobsClient)
  const reads: ReadonlyArray<readonly [string, Effect.Effect<unknown, unknown>]> = [
    ["listQueues", jobs.listQueues],
    ["count, every job", jobs.count({})],
    ["count, state completed", jobs.count({ state: "completed" })],
    ["count, state discarded", jobs.count({ state: "discarded" })],
    ["count, queue q3 type t13", jobs.count({ queue: "q3", type: "t13" })],
    ["listPage, 50", jobs.listPage({ limit: 50 })],
    ["listPage, 50 queue q3 type t13", jobs.listPage({ queue: "q3", type: "t13", limit: 50 })],
  ]
  const calls: Array<{ read: string; medianMs: number }> = []
  for (const [read, effect] of reads) {
    const runs: Array<number> = []
    for (let i = 0; i < 5; i++) {
      const start = performance.now()
      yield* Effect.orDie(effect)
      runs.push(performance.now() - start)
    }
    runs.sort((a, b) => a - b)
    calls.push({ read, medianMs: Math.round(runs[2]! * 10) / 10 })
  }
  console.table(calls)
  console.log(JSON.stringify({ rows, pages: result, reads: calls }))
}).pipe(Effect.scoped)

program.pipe(
  Effect.provide(JobsPg.layer({ url, maxConnections: 4 })),
  Logger.withMinimumLogLevel(LogLevel.Warning),
  Effect.runPromise,
)
