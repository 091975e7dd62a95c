import { Effect } from "effect"
import { Jobs } from "effect-jobs"

export const JobsLive = Jobs.layer({
  queues: {
    // A job this queue discards moves to "payments-failed" instead, available again.
    payments: { concurrency: 5, deadLetter: "payments-failed" },
    // Run by the same handlers, one at a time; leave it out to keep the jobs waiting there.
    "payments-failed": 1,
  },
})

export const report = Effect.gen(function* () {
  const jobs = yield* Jobs.Jobs
  for (const job of yield* jobs.list({ queue: "payments-failed" })) {
    const last = job.errors.at(-1)
    yield* Effect.log(`#${job.id} came from ${job.meta.deadLetteredFrom}: ${last?.tag} ${last?.message}`)
  }
})
