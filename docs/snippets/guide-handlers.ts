import { Effect, Schema } from "effect"
import { Job } from "effect-jobs"

const ImportFeed = Job.make("import-feed", {
  args: Schema.Struct({ url: Schema.String }),
  result: Schema.Struct({ items: Schema.Number }),
  maxAttempts: 5,
})

class FeedUnavailable extends Schema.TaggedError<FeedUnavailable>()("FeedUnavailable", {
  status: Schema.Number,
}) {}

const fetchStatus = (url: string) => Effect.succeed(url.length > 100 ? 429 : 200)

export const importFeed = ImportFeed.handler(({ args, job }) =>
  Effect.gen(function* () {
    const status = yield* fetchStatus(args.url)
    // Rate limited: run again in a minute, without using up an attempt.
    if (status === 429) return yield* Job.snooze("1 minute")
    // The feed is gone for good: end the job as `cancelled`.
    if (status === 410) return yield* Job.cancel("the feed no longer exists")
    // Retrying cannot help: end the job as `discarded`, whatever attempts are left.
    if (status === 400) return yield* Job.discard(`the server rejects ${args.url}`)
    // Any other failure is retried after the backoff, until attempt 5 fails too.
    if (status !== 200) return yield* new FeedUnavailable({ status })
    yield* Effect.log(`imported ${args.url} on attempt ${job.attempt} of ${job.maxAttempts}`)
    return { items: 42 } // stored as the job's `result`
  }),
)
