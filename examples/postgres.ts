/**
 * The same runtime on a PostgreSQL server: `npx tsx examples/postgres.ts`
 *
 * Connects to DATABASE_URL (default postgres://postgres@127.0.0.1:5432/postgres) and keeps
 * its jobs in the schema `effect_jobs_example`, created on the first run. Inserts a batch of
 * jobs with one statement (one of them fails once and is retried), schedules one for later,
 * cancels one while it runs, prints the events and the stored results, then stops.
 */
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import { Console, Effect, Layer, Logger, LogLevel, Schema, Stream } from "effect"
import { Job, Jobs, JobsPg } from "effect-jobs"

const url = process.env.DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/postgres"

const ResizeImage = Job.make("resize-image", {
  args: Schema.Struct({ imageId: Schema.Number, width: Schema.Number }),
  result: Schema.Struct({ bytes: Schema.Number }), // stored with the job when it completes
  maxAttempts: 5,
  backoff: "200 millis",
})

class StorageBusy extends Schema.TaggedError<StorageBusy>()("StorageBusy", { message: Schema.String }) {}

const resizeImage = ResizeImage.handler(({ args, job }) =>
  Effect.gen(function* () {
    // Image 3 fails on its first attempt; the runtime retries it 200 ms later.
    if (args.imageId === 3 && job.attempt === 1) {
      return yield* new StorageBusy({ message: "the image store is busy" })
    }
    yield* Effect.sleep(args.width / 2) // milliseconds: the wider, the slower
    return { bytes: args.width * 150 }
  }),
)

const JobsLive = Jobs.layer({
  handlers: [resizeImage],
  schema: "effect_jobs_example", // the default is "effect_jobs"
  queues: { default: 3 }, // at most 3 jobs at once in this process
  stageInterval: "100 millis", // look for due scheduled and retryable jobs every 100 ms
}).pipe(Layer.provide(JobsPg.layer({ url })))

const program = Effect.gen(function* () {
  const jobs = yield* Jobs.Jobs
  yield* Console.log(`Connected to ${new URL(url).host}, running as node ${jobs.node}`)

  yield* jobs.events.pipe(
    Stream.filter((event) => event._tag !== "Inserted"),
    Stream.runForEach((event) => {
      const what = `  event ${event._tag.padEnd(9)} #${event.id}`
      switch (event._tag) {
        case "Started":
          return Console.log(`${what} attempt ${event.attempt}`)
        case "Completed":
          return Console.log(`${what} attempt ${event.attempt}, ran ${event.durationMillis} ms`)
        case "Failed":
          return Console.log(`${what} attempt ${event.attempt}: ${event.error}`)
        default:
          return Console.log(what)
      }
    }),
    Effect.fork,
  )

  yield* Console.log("\nInserting 5 jobs with one statement, and one to run in 2 seconds:")
  const batch = yield* jobs.insertMany(
    ResizeImage,
    [1, 2, 3, 4, 5].map((imageId) => ({ imageId, width: 640 })),
  )
  const later = yield* jobs.insert(ResizeImage, { imageId: 6, width: 1280 }, { scheduleIn: "2 seconds" })

  // A job that would run for 30 seconds: cancel it once it has started.
  const huge = yield* jobs.insert(ResizeImage, { imageId: 7, width: 60_000 })
  yield* jobs
    .get(huge.id)
    .pipe(Effect.delay("100 millis"), Effect.repeat({ until: (job) => job.state === "executing" }))
  yield* jobs.cancel(huge.id)
  yield* Console.log(`  cancelled job #${huge.id} while it ran: its handler is interrupted`)

  // Check every 100 ms until all of them have finished.
  const finished = yield* Effect.forEach([...batch, later, huge], (job) =>
    jobs.get(job.id).pipe(Effect.delay("100 millis"), Effect.repeat({ until: (job) => job.isTerminal })),
  )

  yield* Console.log("\nAs stored in PostgreSQL:")
  for (const job of finished) {
    const errors = job.errors.map((error) => `${error.tag} on attempt ${error.attempt}`).join(", ")
    yield* Console.log(
      `  #${job.id} ${job.state.padEnd(9)} attempts: ${job.attempt}, result: ${JSON.stringify(job.result)}` +
        (errors ? `, errors: ${errors}` : ""),
    )
  }
})

// When `program` ends the layer closes: the runtime stops, then the connections close.
program.pipe(
  Effect.provide(JobsLive),
  Effect.zipRight(Console.log("\nStopped.")),
  // The runtime also logs each failed attempt as a warning; here the events say it already.
  Logger.withMinimumLogLevel(LogLevel.Error),
  NodeRuntime.runMain,
)
