/**
 * A worker process for the crash test: runs one queue against PostgreSQL, prints
 * "started <id>" when its handler begins, and then hangs until it is killed.
 */
import { Effect, Layer, Schema } from "effect"
import * as Job from "../../src/Job.js"
import * as Jobs from "../../src/Jobs.js"
import * as JobsPg from "../../src/JobsPg.js"

const [url, schema] = process.argv.slice(2)
export const Hang = Job.make("hang", { args: Schema.Struct({}) })
const hang = Hang.handler(({ job }) =>
  Effect.zipRight(
    Effect.sync(() => process.stdout.write(`started ${job.id}\n`)),
    Effect.never,
  ),
)

Effect.runPromise(
  Layer.launch(
    Jobs.layer({ schema: schema!, handlers: [hang], heartbeatInterval: "100 millis" }).pipe(
      Layer.provide(JobsPg.layer({ url: url! })),
    ),
  ),
)
