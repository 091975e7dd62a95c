/**
 * What the pages read, all through the producer-only client and the schedules service, so the
 * dashboard's process never joins the cluster.
 */
import type { JobState } from "../JobRecord.js"
import type { JobsClient } from "../JobsClient.js"
import type { Schedules } from "../Schedules.js"

export interface Sources {
  readonly client: JobsClient["Type"]
  readonly schedules: Schedules["Type"]
}

export const states: ReadonlyArray<JobState> = [
  "available",
  "scheduled",
  "executing",
  "retryable",
  "completed",
  "discarded",
  "cancelled",
]
