import { Effect } from "effect"
import { Jobs } from "effect-jobs"

export const program = Effect.gen(function* () {
  const jobs = yield* Jobs.Jobs

  // Newest first, up to 50 by default (at most 1,000); see Finding jobs for filters and pages.
  const failed = yield* jobs.list({ state: ["retryable", "discarded"], queue: "default", limit: 100 })

  for (const job of failed) {
    const last = job.errors.at(-1)
    yield* Effect.log(`#${job.id} ${job.type} ${job.state} after ${job.attempt} attempts: ${last?.message}`)
  }

  const job = yield* jobs.get(42)
  if (job.state === "discarded") yield* jobs.retry(job.id) // run it again now, one more attempt
  if (job.state === "scheduled") yield* jobs.cancel(job.id) // never run it
  if (job.isTerminal) yield* jobs.delete(job.id) // forget it
}).pipe(
  Effect.catchTags({
    JobNotFound: (error) => Effect.logWarning(error.message),
    JobStateConflict: (error) => Effect.logWarning(error.message), // e.g. it finished meanwhile
  }),
)
