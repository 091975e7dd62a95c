/**
 * A worker process for the crash suite. Runs the `chaos` job type against PostgreSQL; every
 * attempt first writes a ledger row (job, attempt, node, pid), so a checker can prove
 * afterwards what ran where. Prints `ready <node>` once its queues run; SIGTERM and SIGINT
 * stop it gracefully (NodeRuntime.runMain).
 *
 * Usage: node --import tsx test/chaos/worker.ts '<json config>'
 */
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import { SqlClient } from "@effect/sql/SqlClient"
import { type Duration, Effect, Layer, Random } from "effect"
import * as Jobs from "../../src/Jobs.js"
import * as JobsPg from "../../src/JobsPg.js"
import { Chaos } from "./job.js"

interface Config {
  readonly url: string
  readonly schema: string
  readonly concurrency: number
  readonly nodeTimeout: Duration.DurationInput
  readonly heartbeatInterval: Duration.DurationInput
  readonly shutdownTimeout: Duration.DurationInput
  readonly maxRescues: number
}

const config = JSON.parse(process.argv[2]!) as Config

const chaos = Chaos.handler(({ args, job }) =>
  Effect.gen(function* () {
    const sql = yield* SqlClient
    yield* sql.unsafe(
      `INSERT INTO ${config.schema}.ledger (job_id, attempt, node, pid) VALUES ($1, $2, $3, $4)`,
      [job.id, job.attempt, job.attemptedBy, process.pid],
    )
    // The poison job takes its whole process down with it.
    if (args.poison) return yield* Effect.sync(() => process.exit(3))
    const millis = args.minMillis + (yield* Random.nextIntBetween(0, args.maxMillis - args.minMillis + 1))
    yield* Effect.sleep(millis)
  }),
)

const JobsLive = Jobs.layer({
  schema: config.schema,
  handlers: [chaos],
  queues: { chaos: config.concurrency },
  nodeTimeout: config.nodeTimeout,
  heartbeatInterval: config.heartbeatInterval,
  shutdownTimeout: config.shutdownTimeout,
  pollInterval: "200 millis",
  prune: false,
  maxRescues: config.maxRescues,
}).pipe(
  Layer.provideMerge(
    JobsPg.layer({ url: config.url, maxConnections: 6, applicationName: "effect-jobs-chaos" }),
  ),
)

NodeRuntime.runMain(
  Effect.gen(function* () {
    const jobs = yield* Jobs.Jobs
    yield* Effect.sync(() => process.stdout.write(`ready ${jobs.node}\n`))
    return yield* Effect.never
  }).pipe(Effect.provide(JobsLive)),
)
