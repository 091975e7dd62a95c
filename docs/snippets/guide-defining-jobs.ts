import { Schema } from "effect"
import { Backoff, Job } from "effect-jobs"

export const ResizeImage = Job.make("resize-image", {
  // The arguments, stored encoded (as JSON) and decoded again for the handler.
  args: Schema.Struct({ imageId: Schema.String, width: Schema.Int.pipe(Schema.positive()) }),
  // The handler's result, stored encoded on the completed job. Default: no result.
  result: Schema.Struct({ bytes: Schema.Number }),
  queue: "media", // default "default"
  priority: 5, // higher runs first; default 0
  maxAttempts: 10, // default 20
  timeout: "2 minutes", // the handler is interrupted after this; default none
  backoff: Backoff.exponential({ base: "5 seconds", max: "30 minutes" }),
})

// Other ways to say how long to wait after failed attempt number n:
export const backoffs = [
  Backoff.exponential(), // the default: 1 s doubling up to 1 hour, ±10 % jitter
  "30 seconds", // always 30 seconds, like Backoff.fixed("30 seconds")
  ["1 second", "10 seconds", "1 minute"], // then 1 minute for every later failure
  (attempt: number) => `${attempt * attempt} seconds`, // any function of the attempt
] satisfies ReadonlyArray<Backoff.BackoffInput>
