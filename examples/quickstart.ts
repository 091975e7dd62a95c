/**
 * Quick start: `npm start`
 *
 * Jobs on embedded PGlite (PostgreSQL running inside this process, no server needed): a few
 * jobs run, one fails once and succeeds on its retry, one is scheduled for later, every
 * lifecycle event is printed, and the runtime stops gracefully while a job is still running.
 */
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import { Console, Effect, Layer, Logger, LogLevel, Schema, Stream } from "effect"
import { Job, type JobEvent, Jobs, JobsPglite } from "effect-jobs"

// 1. Define jobs: a type name, a Schema for the arguments (stored as JSON), retry settings.
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
    yield* Console.log(`    > building the ${args.month} report (takes 1 second)`)
    yield* Effect.sleep("1 second")
    yield* Console.log(`    > the ${args.month} report is done`)
  }),
)

// 3. The runtime: handlers, queues and a database. The jobs are kept on disk in `dataDir`
// (`JobsPglite.layer()` keeps them in memory, `JobsPg.layer({ url })` uses a PostgreSQL server).
const dataDir = ".effect-jobs/quickstart"

const JobsLive = Jobs.layer({
  handlers: [sendEmail, chargeCard, buildReport],
  queues: { default: 5 }, // run up to 5 jobs at once
  stageInterval: "100 millis", // look for due scheduled and retryable jobs every 100 ms
  shutdownTimeout: "5 seconds", // how long running jobs get to finish when the runtime stops
}).pipe(Layer.provide(JobsPglite.layer({ dataDir })))

const time = (date: Date) => date.toISOString().slice(11, 23)

const printEvent = (event: JobEvent.JobEvent) => {
  const what = `  event ${event._tag.padEnd(9)} #${event.id} ${event.type.padEnd(12)}`
  switch (event._tag) {
    case "Inserted":
      return Console.log(`${what} in queue ${event.queue}`)
    case "Started":
      return Console.log(`${what} attempt ${event.attempt}`)
    case "Completed":
      return Console.log(`${what} attempt ${event.attempt}, ran ${event.durationMillis} ms`)
    case "Failed":
      return Console.log(`${what} attempt ${event.attempt}: ${event.error}, retry at ${time(event.retryAt)}`)
    case "Snoozed":
      return Console.log(`${what} until ${time(event.until)}`)
    case "Cancelled":
    case "Discarded":
      return Console.log(`${what} ${event.reason}`)
    case "Rescued":
      return Console.log(`${what} attempt ${event.attempt}, now ${event.state}`)
  }
}

const program = Effect.gen(function* () {
  const jobs = yield* Jobs.Jobs
  const stored = (yield* jobs.queueInfo("default")).states
  yield* Console.log(`It holds ${stored.completed.count} jobs completed by earlier runs.\n`)

  // 4. Print the lifecycle events of this node's jobs, in the background.
  yield* jobs.events.pipe(Stream.runForEach(printEvent), Effect.fork)

  yield* Console.log("Inserting two jobs, and one scheduled to run in 2 seconds:")
  yield* jobs.insert(SendEmail, { to: "ada@example.com", subject: "Welcome!" })
  yield* jobs.insert(ChargeCard, { orderId: 17, cents: 4200 })
  const reminder = yield* jobs.insert(
    SendEmail,
    { to: "ada@example.com", subject: "Your order has shipped" },
    { scheduleIn: "2 seconds" },
  )
  yield* Console.log(`  job #${reminder.id} is ${reminder.state} for ${time(reminder.scheduledAt)}`)

  // Check every 100 ms until the scheduled job has run.
  const done = yield* jobs
    .get(reminder.id)
    .pipe(Effect.delay("100 millis"), Effect.repeat({ until: (job) => job.isTerminal }))
  yield* Console.log(`  job #${done.id} is ${done.state}: it started at ${time(done.attemptedAt!)}`)

  yield* Console.log("\nStarting a long job, and stopping while it runs:")
  yield* jobs.insert(BuildReport, { month: "May" })
  yield* Effect.sleep("300 millis")
  yield* Console.log("  stopping: no more jobs are claimed, running ones get up to 5 seconds to finish")
})

// 5. Run it. When `program` ends the layer closes, and closing it stops the runtime gracefully.
Console.log(`Opening the database in ${dataDir} (the first run creates it, which takes a few seconds)`).pipe(
  Effect.zipRight(Effect.provide(program, JobsLive)),
  Effect.zipRight(Console.log("Stopped.")),
  // The runtime also logs each failed attempt as a warning; here the events say it already.
  Logger.withMinimumLogLevel(LogLevel.Error),
  NodeRuntime.runMain,
)
