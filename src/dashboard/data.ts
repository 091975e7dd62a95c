/**
 * What the pages read, all through the producer-only client and the schedules service, so the
 * dashboard's process never joins the cluster.
 */
import { Effect } from "effect"
import type { JobState } from "../JobRecord.js"
import type * as Jobs from "../Jobs.js"
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

/** The queues some node runs or some schedule fills, by name. */
export const queueNames = ({ client, schedules }: Sources) =>
  Effect.map(Effect.all([client.nodes, schedules.list], { concurrency: 2 }), ([nodes, list]) =>
    [...new Set([...nodes.flatMap((node) => node.queues), ...list.map((schedule) => schedule.queue)])].sort(),
  )

/** Each known queue's counts; a queue that vanished meanwhile is left out. */
export const queueInfos = (sources: Sources, names: ReadonlyArray<string>) =>
  Effect.map(
    Effect.forEach(
      names,
      (name) =>
        sources.client.queueInfo(name).pipe(
          Effect.map((info): Jobs.QueueInfo | undefined => info),
          Effect.catchTag("QueueNotFound", () => Effect.succeed(undefined)),
        ),
      { concurrency: 4 },
    ),
    (infos) => infos.filter((info): info is Jobs.QueueInfo => info !== undefined),
  )

/** Jobs per state over the given queues. */
export const stateCounts = (infos: ReadonlyArray<Jobs.QueueInfo>): Record<JobState, number> => {
  const counts = Object.fromEntries(states.map((state) => [state, 0])) as Record<JobState, number>
  for (const info of infos) for (const state of states) counts[state] += info.states[state].count
  return counts
}
