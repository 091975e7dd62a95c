/**
 * The same runtime on a PostgreSQL server: `npx tsx examples/postgres.ts`
 *
 * Connects to DATABASE_URL (default postgres://postgres@127.0.0.1:5432/postgres), creates the
 * `effect_jobs` schema there if it is missing, runs a batch of jobs (one fails once and is
 * retried, one is scheduled, one is cancelled while it runs) while printing their events,
 * then stops gracefully.
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
  queues: { default: 3 }, // at most 3 jobs at once on this process
  stageInterval: "100 millis",
  shutdownTimeout: "5 seconds",
}).pipe(Layer.provide(JobsPg.layer({ url })))

const program = Effect.gen(function* () {
  const jobs = yield* Jobs.Jobs
  yield* Console.log(`Connected to ${new URL(url).host} as node ${jobs.node}\n`)

  yield* jobs.events.pipe(
    Stream.filter((event) => event._tag !== "Inserted"),
    Stream.runForEach((event) =>
      Console.log(`  ${event._tag.padEnd(9)} #${event.id}${"attempt" in event ? `, attempt ${event.attempt}` : ""}`),
    ),
    Effect.fork,
  )

  // One statement inserts the whole batch; PostgreSQL wakes the queue when it commits.
  const batch = yield* jobs.insertMany(
    ResizeImage,
    [1, 2, 3, 4, 5].map((imageId) => ({ imageId, width: 640 })),
  )
  const later = yield* jobs.insert(ResizeImage, { imageId: 6, width: 1280 }, { scheduleIn: "2 seconds" })
  yield* Console.log(`Inserted jobs #${batch[0]!.id} to #${batch.at(-1)!.id}, and #${later.id} for 2 seconds from now:`)

  // A job that would run for 30 seconds: cancel it once it has started.
  const huge = yield* jobs.insert(ResizeImage, { imageId: 7, width: 60_000 })
  yield* jobs
    .get(huge.id)
    .pipe(Effect.delay("100 millis"), Effect.repeat({ until: (job) => job.state === "executing" }))
  yield* jobs.cancel(huge.id)

  // Check every 100 ms until all of them have finished.
  const ids = [...batch, later, huge].map((job) => job.id)
  const finished = yield* Effect.forEach(ids, (id) =>
    jobs.get(id).pipe(Effect.delay("100 millis"), Effect.repeat({ until: (job) => job.isTerminal })),
  )

  yield* Console.log("\nStored results:")
  for (const job of finished) {
    yield* Console.log(
      `  #${job.id} ${job.state} after ${job.attempt} attempt(s), result ${JSON.stringify(job.result)}` +
        (job.errors.length > 0 ? `, earlier error: ${job.errors[0]!.tag}` : ""),
    )
  }
})

program.pipe(
  Effect.provide(JobsLive),
  Effect.zipRight(Console.log("\nStopped.")),
  Logger.withMinimumLogLevel(LogLevel.Error),
  NodeRuntime.runMain,
)
