import { Schema } from "effect"
import { Job } from "effect-jobs"

export const Remind = Job.make("remind", {
  // Schema.Date encodes to an ISO string and Schema.BigInt to a string: both are JSON.
  args: Schema.Struct({ userId: Schema.BigInt, at: Schema.Date }),
})

export const Rejected = Job.make("rejected", {
  // @ts-expect-error Schema.DateFromSelf encodes to a Date, which JSON cannot carry.
  args: Schema.Struct({ at: Schema.DateFromSelf }),
})
