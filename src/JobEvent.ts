/**
 * Lifecycle events published on `Jobs.events`. Publishing never waits for a slow subscriber:
 * a subscriber that falls behind loses the oldest events it has not read.
 */
import { Data } from "effect"
import type { JobId } from "./JobRecord.js"

interface Common {
  readonly id: JobId
  readonly queue: string
  readonly type: string
  readonly at: Date
}

export type JobEvent = Data.TaggedEnum<{
  Inserted: Common
  Started: Common & { readonly attempt: number }
  Completed: Common & { readonly attempt: number; readonly durationMillis: number }
  Failed: Common & {
    readonly attempt: number
    readonly error: string
    readonly message: string
    /** When the next attempt is due; the job is `retryable` until then. */
    readonly retryAt: Date
  }
  Snoozed: Common & { readonly attempt: number; readonly until: Date }
  Cancelled: Common & { readonly reason: string }
  Discarded: Common & { readonly attempt: number; readonly reason: string }
  /**
   * A job its node left executing (the node stopped heartbeating, or started again under the
   * same name) was given back by this node: `retryable`, or `discarded` when out of attempts or
   * rescues. Published on the node that rescued it, the leader.
   */
  Rescued: Common & { readonly attempt: number; readonly state: "retryable" | "discarded" }
}>

export const JobEvent = Data.taggedEnum<JobEvent>()
