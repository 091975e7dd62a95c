import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import { Effect, Layer, Schema } from "effect"
import { Job, Jobs, JobsPglite } from "effect-jobs"

// A job type: a name, a Schema for its arguments, and how to retry it.
const SendEmail = Job.make("send-email", {
  args: Schema.Struct({ to: Schema.String, subject: Schema.String }),
  maxAttempts: 5,
  backoff: "10 seconds",
})

// The code that performs it: any Effect. A failure is retried after the backoff.
const sendEmail = SendEmail.handler(({ args, job }) =>
  Effect.log(`sending "${args.subject}" to ${args.to} (attempt ${job.attempt})`),
)

// The runtime, on embedded PGlite kept in ./data/jobs. For a PostgreSQL server use
// JobsPg.layer({ url: "postgres://user@127.0.0.1:5432/app" }) instead.
const JobsLive = Jobs.layer({ handlers: [sendEmail], queues: { default: 10 } }).pipe(
  Layer.provide(JobsPglite.layer({ dataDir: "./data/jobs" })),
)

const program = Effect.gen(function* () {
  const jobs = yield* Jobs.Jobs
  yield* jobs.insert(SendEmail, { to: "ada@example.com", subject: "Welcome" })
  const reminder = yield* jobs.insert(
    SendEmail,
    { to: "ada@example.com", subject: "Still there?" },
    { scheduleIn: "3 days" },
  )
  yield* jobs.cancel(reminder.id) // changed our mind
  yield* Effect.sleep("1 second") // let the first one run
})

// Closing the layer (here: when `program` ends, or on SIGINT/SIGTERM) stops the runtime
// gracefully.
NodeRuntime.runMain(program.pipe(Effect.provide(JobsLive)))
