/**
 * The consumer test's program for an app on PostgreSQL that has not installed PGlite: the
 * root import loads, a job runs, and `JobsPglite` says what is missing. Options come from
 * the environment as `string | undefined`, as apps pass them, and must type-check with
 * `exactOptionalPropertyTypes`.
 */
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import { Console, Effect, Layer, Schedule, Schema } from "effect"
import { Job, Jobs, JobsPg, JobsPglite } from "effect-jobs"

const SendEmail = Job.make("send-email", {
  args: Schema.Struct({ to: Schema.String, subject: Schema.String }),
  queue: process.env.JOBS_QUEUE,
  maxAttempts: undefined,
})

const sendEmail = SendEmail.handler(({ args, job }) =>
  Console.log(`sent "${args.subject}" to ${args.to} (job ${job.id}, queue ${job.queue})`),
)

const JobsLive = Jobs.layer({
  handlers: [sendEmail],
  queues: { default: 2 },
  schema: process.env.JOBS_SCHEMA,
  pollInterval: undefined,
}).pipe(Layer.provide(JobsPg.layer({ url: process.env.DATABASE_URL, preparedStatements: undefined })))

const program = Effect.gen(function* () {
  const jobs = yield* Jobs.Jobs
  const { id } = yield* jobs.insert(
    SendEmail,
    { to: "ada@example.com", subject: "Welcome" },
    { priority: undefined, scheduleIn: undefined },
  )
  yield* jobs
    .get(id)
    .pipe(
      Effect.repeat({ schedule: Schedule.spaced("50 millis"), until: (job) => job.state === "completed" }),
      Effect.timeoutFail({ duration: "60 seconds", onTimeout: () => `job ${id} did not complete` }),
    )
  yield* Console.log(`job ${id} is ${(yield* jobs.get(id)).state}`)

  const pglite = yield* Layer.build(JobsPglite.layer()).pipe(Effect.scoped, Effect.flip)
  yield* Console.log(`JobsPglite.layer: ${pglite._tag}: ${pglite.message}`)
})

NodeRuntime.runMain(program.pipe(Effect.provide(JobsLive)))
