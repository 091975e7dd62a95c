import { Effect, Layer } from "effect"
import { Jobs, JobsPg } from "effect-jobs"

// Every node runs this same program against the same database and schema.
export const NodeLive = Jobs.layer({
  queues: { default: 10, mail: 2 },
  heartbeatInterval: "5 seconds", // the default: how often this node says it is alive
  nodeTimeout: "30 seconds", // the default: a node silent this long is taken for dead
  maxRescues: 3, // the default: a job rescued this often is discarded
}).pipe(Layer.provide(JobsPg.layer({ url: "postgres://app@127.0.0.1:5432/app" })))

export const operate = Effect.gen(function* () {
  const jobs = yield* Jobs.Jobs

  for (const node of yield* jobs.nodes) {
    yield* Effect.log(`${node.id} (${node.host}, pid ${node.pid}) runs ${node.queues.join(", ")}`)
  }
  yield* Effect.log(`maintenance is led by ${(yield* jobs.leader) ?? "nobody at the moment"}`)

  // Every node, through the database. Works whether or not this node runs the queue.
  yield* jobs.pauseQueue("mail") // stored: nodes starting later start it paused too
  yield* jobs.scaleQueue("mail", 4) // stored: every node running it now runs 4 at a time
  yield* jobs.resumeQueue("mail")

  // This node only; fails with QueueNotFound if the queue does not run here.
  yield* jobs.pauseQueue("mail", { localOnly: true })
  yield* jobs.scaleQueue("mail", 1, { localOnly: true })
  yield* jobs.resumeQueue("mail", { localOnly: true })
})
