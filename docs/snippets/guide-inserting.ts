import { Effect, Schema } from "effect"
import { Job, Jobs } from "effect-jobs"

const Notify = Job.make("notify", { args: Schema.Struct({ userId: Schema.Number }) })

export const program = Effect.gen(function* () {
  const jobs = yield* Jobs.Jobs

  yield* jobs.insert(Notify, { userId: 1 }) // runs as soon as a slot is free
  yield* jobs.insert(
    Notify,
    { userId: 2 },
    {
      queue: "urgent", // instead of the definition's queue
      priority: 0, // instead of the definition's priority
      scheduleIn: "15 minutes", // or scheduleAt: new Date(...)
      maxAttempts: 3, // instead of the definition's maxAttempts
      meta: { requestedBy: "admin" }, // free-form, stored with the job
    },
  )

  // Many jobs of one type in one statement: all of them are stored, or none.
  const batch = yield* jobs.insertMany(
    Notify,
    [3, 4, 5].map((userId) => ({ userId })),
  )
  yield* Effect.log(`inserted jobs ${batch.map((job) => job.id).join(", ")}`)
}).pipe(
  // Nothing is written when the options or arguments are not acceptable.
  Effect.catchTags({
    InvalidJobOptions: (error) => Effect.logError(error.message),
    InvalidJobArgs: (error) => Effect.logError(error.message),
    PayloadTooLarge: (error) => Effect.logError(error.message),
  }),
)
