/**
 * Graceful shutdown: `npx tsx examples/graceful-shutdown.ts`
 *
 * Two jobs are running when the process gets SIGTERM (it sends itself one after a second, as
 * an orchestrator would on a deploy; press Ctrl-C to do it by hand). `NodeRuntime.runMain`
 * turns the signal into an interruption, which closes the layers: the runtime stops claiming
 * jobs and gives running ones `shutdownTimeout` to finish. The short job finishes in time;
 * the long one is interrupted and put back to `available` with its attempt given back, so
 * the next process to start runs it again from the beginning.
 */
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import { SqlClient } from "@effect/sql"
import { Console, Effect, Schema } from "effect"
import { Job, Jobs, JobsPglite } from "effect-jobs"

const Work = Job.make("work", {
  args: Schema.Struct({ name: Schema.String, seconds: Schema.Number }),
})

const work = Work.handler(({ args }) =>
  Console.log(`  [${args.name}] started, needs ${args.seconds} s`).pipe(
    Effect.zipRight(Effect.sleep(`${args.seconds} seconds`)),
    Effect.zipRight(Console.log(`  [${args.name}] finished`)),
    Effect.onInterrupt(() => Console.log(`  [${args.name}] interrupted: the runtime is stopping`)),
  ),
)

const program = Effect.gen(function* () {
  const jobs = yield* Jobs.Jobs
  yield* jobs.insert(Work, { name: "short", seconds: 1.5 })
  yield* jobs.insert(Work, { name: "long", seconds: 60 })

  yield* Effect.sleep("1 second")
  yield* Console.log("\nSending SIGTERM to this process (shutdownTimeout: 2 seconds)")
  yield* Effect.sync(() => process.kill(process.pid, "SIGTERM"))
  return yield* Effect.never
})

// Runs once the jobs runtime has stopped, while the database is still open. Jobs are rows of
// the table `jobs` in the schema `effect_jobs` (the `schema` option of Jobs.layer).
const showJobs = Effect.gen(function* () {
  const sql = yield* SqlClient.SqlClient
  const rows = yield* sql<{ id: string; args: { name: string }; state: string; attempt: number }>`
    SELECT id, args, state, attempt FROM effect_jobs.jobs ORDER BY id`
  yield* Console.log("\nStopped. The jobs as stored:")
  for (const row of rows) {
    yield* Console.log(
      `  #${row.id} ${row.args.name.padEnd(5)} ${row.state.padEnd(9)} attempts used: ${row.attempt}`,
    )
  }
}).pipe(Effect.orDie)

program.pipe(
  Effect.provide(Jobs.layer({ handlers: [work], shutdownTimeout: "2 seconds" })),
  Effect.ensuring(showJobs),
  Effect.provide(JobsPglite.layer()),
  NodeRuntime.runMain,
)
