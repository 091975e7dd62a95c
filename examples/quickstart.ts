/**
 * Quick start: `npm start`
 *
 * Jobs on embedded PGlite (PostgreSQL in this process, here in memory): a few jobs run, one
 * fails once and succeeds on its retry, one is scheduled for later, every lifecycle event is
 * printed, and the runtime stops gracefully while a job is still running.
 */
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import { Console, Effect, Layer, Schedule, Schema, Stream } from "effect"
import { Job, type JobEvent, Jobs, JobsPglite } from "effect-jobs"

// 1. Define jobs: a type name, a Schema for the arguments (stored as JSON) and how to retry.
const SendEmail = Job.make("send-email", {
  args: Schema.Struct({ to: Schema.String, subject: Schema.String }),
})

const ChargeCard = Job.make("charge-card", {
  args: Schema.Struct({ orderId: Schema.Number, cents: Schema.Number }),
  maxAttempts: 3,
  backoff: "200 millis", // wait 200 ms before each retry
})

const BuildReport = Job.make("build-report", {
  args: Schema.Struct({ month: Schema.String }),
})

// A typed failure: the job is retried after its backoff, until it runs out of attempts.
class GatewayDown extends Schema.TaggedError<GatewayDown>()("GatewayDown", { message: Schema.String }) {}

// 2. Give each job the code that performs it.
const sendEmail = SendEmail.handler(({ args }) =>
  Effect.sleep("100 millis").pipe(Effect.zipRight(Console.log(`    > sent "${args.subject}" to ${args.to}`))),
)

const chargeCard = ChargeCard.handler(({ args, job }) =>
  job.attempt === 1
    ? Effect.fail(new GatewayDown({ message: "the payment gateway timed out" }))
    : Console.log(`    > charged ${(args.cents / 100).toFixed(2)} EUR for order ${args.orderId}`),
)

const buildReport = BuildReport.handler(({ args }) =>
  Effect.gen(function* () {
    yield* Console.log(`    > building the ${args.month} report (takes 1.5 seconds)`)
    yield* Effect.sleep("1500 millis")
    yield* Console.log(`    > the ${args.month} report is done`)
  }),
)

// 3. The runtime: queues, handlers and a database. `JobsPglite.layer({ dataDir })` would keep
// the jobs on disk, and `JobsPg.layer({ url })` in a PostgreSQL server.
const JobsLive = Jobs.layer({
  handlers: [sendEmail, chargeCard, buildReport],
  queues: { default: 5 }, // run up to 5 jobs at once
  stageInterval: "100 millis", // look for due scheduled and retryable jobs every 100 ms
  shutdownTimeout: "5 seconds", // how long running jobs get to finish when the runtime stops
}).pipe(Layer.provide(JobsPglite.layer()))

const time = (date: Date) => date.toISOString().slice(11, 23)

const printEvent = (event: JobEvent.JobEvent) => {
  const job = `#${event.id} ${event.type}`.padEnd(16)
  switch (event._tag) {
    case "Inserted":
      return Console.log(`  event ${event._tag.padEnd(9)} ${job}`)
    case "Started":
      return Console.log(`  event ${event._tag.padEnd(9)} ${job} attempt ${event.attempt}`)
    case "Completed":
      return Console.log(`  event ${event._tag.padEnd(9)} ${job} in ${event.durationMillis} ms`)
    case "Failed":
      return Console.log(
        `  event ${event._tag.padEnd(9)} ${job} attempt ${event.attempt}: ${event.error} (${event.message}), retry at ${time(event.retryAt)}`,
      )
    case "Snoozed":
      return Console.log(`  event ${event._tag.padEnd(9)} ${job} until ${time(event.until)}`)
    case "Cancelled":
    case "Discarded":
      return Console.log(`  event ${event._tag.padEnd(9)} ${job}: ${event.reason}`)
  }
}

const program = Effect.gen(function* () {
  const jobs = yield* Jobs.Jobs

  // 4. Print every lifecycle event of this node's jobs, in the background.
  yield* jobs.events.pipe(Stream.runForEach(printEvent), Effect.fork)

  yield* Console.log("Inserting two jobs, and a third one scheduled in 2 seconds:")
  yield* jobs.insert(SendEmail, { to: "ada@example.com", subject: "Welcome!" })
  yield* jobs.insert(ChargeCard, { orderId: 17, cents: 4200 })
  const reminder = yield* jobs.insert(
    SendEmail,
    { to: "ada@example.com", subject: "Your order has shipped" },
    { scheduleIn: "2 seconds" },
  )
  yield* Console.log(`  job #${reminder.id} is ${reminder.state} to run at ${time(reminder.scheduledAt)}`)

  // Wait until the scheduled job has run.
  const done = yield* jobs
    .get(reminder.id)
    .pipe(Effect.repeat({ schedule: Schedule.spaced("100 millis"), until: (job) => job.isTerminal }))
  yield* Console.log(`  job #${done.id} is ${done.state}, it ran at ${time(done.attemptedAt!)}`)

  yield* Console.log("\nStarting a long job, then stopping the runtime while it runs:")
  yield* jobs.insert(BuildReport, { month: "May" })
  yield* Effect.sleep("500 millis")
  yield* Console.log("  stopping: no new jobs are claimed; running jobs get up to 5 seconds to finish")
})

// 5. Run it. When `program` ends, the layer closes and the runtime stops gracefully.
program.pipe(
  Effect.provide(JobsLive),
  Effect.zipRight(Console.log("Stopped: every job finished or was put back in the queue.")),
  NodeRuntime.runMain,
)
