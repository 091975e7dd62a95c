/**
 * A producer process for the client tests: builds `JobsClient.layer` on PostgreSQL, inserts
 * `count` echo jobs, prints `inserted <ids as JSON>`, and stays alive until killed, so the
 * test can look at the cluster while it runs.
 *
 * Usage: node --import tsx test/support/clientProcess.ts <url> <schema> <count>
 */
import { Effect, Layer, Schema } from "effect"
import * as Job from "../../src/Job.js"
import * as JobsClient from "../../src/JobsClient.js"
import * as JobsPg from "../../src/JobsPg.js"

const [url, schema, count] = process.argv.slice(2) as [string, string, string]
const Echo = Job.make("echo", { args: Schema.Struct({ text: Schema.String }) })

const program = Effect.gen(function* () {
  const client = yield* JobsClient.JobsClient
  const jobs = yield* client.insertMany(
    Echo,
    Array.from({ length: Number(count) }, (_, i) => ({ text: `from process ${process.pid}, #${i}` })),
  )
  yield* Effect.sync(() => process.stdout.write(`inserted ${JSON.stringify(jobs.map((job) => job.id))}\n`))
  return yield* Effect.never
}).pipe(
  Effect.provide(JobsClient.layer({ schema }).pipe(Layer.provide(JobsPg.layer({ url, maxConnections: 1 })))),
)

Effect.runPromise(program).catch((error) => {
  process.stderr.write(`${error}\n`)
  process.exit(1)
})
