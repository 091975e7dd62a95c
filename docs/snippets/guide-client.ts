import { Config, Effect, Layer, Schema } from "effect"
import { Job, Jobs, JobsClient, JobsPg } from "effect-jobs"

const SendEmail = Job.make("send-email", { args: Schema.Struct({ to: Schema.String }) })

// Code that only inserts and manages jobs asks for JobsClient: it runs with either layer below.
export const signUp = (email: string) =>
  Effect.gen(function* () {
    const jobs = yield* JobsClient.JobsClient
    yield* jobs.insert(SendEmail, { to: email }) // its commit wakes a worker elsewhere
  })

export const pauseMail = Effect.gen(function* () {
  const jobs = yield* JobsClient.JobsClient
  yield* jobs.pauseQueue("mail") // stored, and signalled to every worker
  const mail = yield* jobs.queueInfo("mail")
  yield* Effect.log(`${mail.states.available.count} mails wait; paused: ${mail.paused}`)
  const workers = yield* jobs.nodes // the workers only: a client never registers
  yield* Effect.log(`${workers.length} workers, leader ${yield* jobs.leader}`)
})

const Database = JobsPg.layerConfig({ url: Config.redacted("DATABASE_URL") })

// A web server: inserts and manages jobs, runs none, and does not touch the schema.
export const WebLive = JobsClient.layer({ schema: "effect_jobs" }).pipe(Layer.provideMerge(Database))

// A worker: runs the queues, and provides JobsClient too.
export const WorkerLive = Jobs.layer({
  queues: { mail: 5 },
  handlers: [SendEmail.handler(({ args }) => Effect.log(`mail to ${args.to}`))],
}).pipe(Layer.provideMerge(Database))
