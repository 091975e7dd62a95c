import { Effect } from "effect"
import { Jobs, JobsClient } from "effect-jobs"

// On a worker: start a queue unless it runs here already (same settings: "running").
export const worker = Effect.gen(function* () {
  const jobs = yield* Jobs.Jobs
  const started = yield* jobs.ensureQueue("reports", { concurrency: 4 })
  yield* Effect.log(`reports: ${started}`) // "started", then "running" on every later call
})

// Anywhere, a client included: the cluster's queues, its orphans, retention and deletion.
export const admin = Effect.gen(function* () {
  const client = yield* JobsClient.JobsClient
  for (const queue of yield* client.listQueues) {
    const where = queue.nodes.map((n) => `${n.node} (${n.running}/${n.concurrency})`).join(", ")
    yield* Effect.log(`${queue.name}: ${queue.counts.available} available, on ${where || "no node"}`)
  }
  const orphans = yield* client.orphans
  for (const { queue, available } of orphans.queues) yield* Effect.log(`${queue}: ${available} stuck`)
  for (const { type, waiting } of orphans.types) yield* Effect.log(`${type}: ${waiting} unhandled`)

  // Keep the audit queue's completed jobs 30 days, whatever the runtime's default.
  yield* client.setQueuePruning("audit", { completed: "30 days" })
  const pruned = yield* client.pruneQueue("reports") // now, even while paused
  yield* Effect.log(`pruned ${pruned} reports`)

  if ((yield* client.pauseQueue("reports")) === "already_paused") yield* Effect.log("it was paused")
  yield* client.resumeQueue("reports")

  // A queue that no live node runs any more: its stored state, and here its jobs too.
  const deleted = yield* client.deleteQueue("legacy", { jobs: true })
  yield* Effect.log(`deleted ${deleted} jobs of legacy`)
})
