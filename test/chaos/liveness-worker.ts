/**
 * A worker process for the liveness scenarios. Runs the `hold` job type against PostgreSQL
 * with a small pool; each run records its start and end in the `runs` table through a
 * connection of its own (not the pool the handlers starve). With JOBS_CLOCK_SKEW_MS set, the
 * process's Effect Clock is that far off, as a machine with a wrong system clock would be.
 * Prints `ready <node>` once its queues run.
 *
 * Usage: node --import tsx test/chaos/liveness-worker.ts '<json config>'
 */
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import { SqlClient } from "@effect/sql/SqlClient"
import { Effect, Layer } from "effect"
import Pg from "pg"
import * as Jobs from "../../src/Jobs.js"
import * as JobsPg from "../../src/JobsPg.js"
import { skewedClock } from "../support/skewedClock.js"
import { Hold } from "./liveness-job.js"

interface Config {
  readonly url: string
  readonly schema: string
  readonly concurrency: number
  readonly maxConnections: number
}

const config = JSON.parse(process.argv[2]!) as Config
const skew = Number(process.env.JOBS_CLOCK_SKEW_MS ?? 0)
const ledger = new Pg.Pool({ connectionString: config.url, max: 2 })
ledger.on("error", () => {})

const record = (id: number, attempt: number, node: string | null, phase: "start" | "end") =>
  Effect.promise(() =>
    ledger.query(
      `INSERT INTO ${config.schema}.runs (job_id, attempt, node, pid, phase) VALUES ($1, $2, $3, $4, $5)`,
      [id, attempt, node, process.pid, phase],
    ),
  )

const hold = Hold.handler(({ args, job }) =>
  Effect.gen(function* () {
    const sql = yield* SqlClient
    yield* record(job.id, job.attempt, job.attemptedBy, "start")
    yield* sql.withTransaction(Effect.zipRight(sql.unsafe("SELECT 1"), Effect.sleep(args.millis)))
    yield* record(job.id, job.attempt, job.attemptedBy, "end")
  }),
)

const JobsLive = Jobs.layer({
  schema: config.schema,
  handlers: [hold],
  // A concurrency of 0: a node that runs no queue, and only takes part in leadership.
  queues: config.concurrency > 0 ? { hold: config.concurrency } : {},
  nodeTimeout: "3 seconds",
  heartbeatInterval: "500 millis",
  shutdownTimeout: "10 seconds",
  pollInterval: "200 millis",
  prune: false,
}).pipe(
  Layer.provideMerge(
    JobsPg.layer({
      url: config.url,
      maxConnections: config.maxConnections,
      applicationName: "effect-jobs-chaos",
    }),
  ),
)

NodeRuntime.runMain(
  Effect.gen(function* () {
    const jobs = yield* Jobs.Jobs
    yield* Effect.sync(() => process.stdout.write(`ready ${jobs.node}\n`))
    return yield* Effect.never
  }).pipe(Effect.provide(JobsLive), Effect.withClock(skewedClock(skew))),
)
