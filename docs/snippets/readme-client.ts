import { Effect, Layer, Schema } from "effect"
import { Job, JobsClient, JobsPg } from "effect-jobs"

const SendEmail = Job.make("send-email", { args: Schema.Struct({ to: Schema.String }) })

// In the web server: no queue, no heartbeat, no leader election, no migration.
export const WebLive = JobsClient.layer().pipe(
  Layer.provideMerge(JobsPg.layer({ url: "postgres://app@127.0.0.1:5432/app" })),
)

export const signUp = (email: string) =>
  Effect.flatMap(JobsClient.JobsClient, (jobs) => jobs.insert(SendEmail, { to: email }))
