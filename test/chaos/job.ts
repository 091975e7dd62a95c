import { Schema } from "effect"
import * as Job from "../../src/Job.js"

/** The crash suite's job: sleeps a while, or kills its process when `poison`. */
export const Chaos = Job.make("chaos", {
  args: Schema.Struct({
    n: Schema.Number,
    minMillis: Schema.Number,
    maxMillis: Schema.Number,
    poison: Schema.optional(Schema.Boolean),
  }),
  queue: "chaos",
  maxAttempts: 25,
  backoff: "100 millis",
})
