/**
 * A worker process for the crash suite. Runs the `chaos` job types against PostgreSQL; every
 * attempt writes a ledger row (job, attempt, node, pid) first thing and another as its last
 * statement, so a checker can prove afterwards what ran where, and what returned. Prints `ready <node>` once its queues run; SIGTERM and SIGINT
 * stop it gracefully (NodeRuntime.runMain).
 *
 * Usage: node --import tsx test/chaos/worker.ts '<json config>'
 */
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import { SqlClient } from "@effect/sql/SqlClient"
import { type Duration, Effect, Layer } from "effect"
import * as Jobs from "../../src/Jobs.js"
import * as JobsPg from "../../src/JobsPg.js"
import { Chaos, ChaosWithResult, chaosRun } from "./job.js"

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
  Effect.flatMap(SqlClient, (sql) => Effect.asVoid(chaosRun(sql, config.schema, args, job))),
)
const chaosWithResult = ChaosWithResult.handler(({ args, job }) =>
  Effect.flatMap(SqlClient, (sql) => chaosRun(sql, config.schema, args, job)),
)

const JobsLive = Jobs.layer({
  schema: config.schema,
  handlers: [chaos, chaosWithResult],
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
