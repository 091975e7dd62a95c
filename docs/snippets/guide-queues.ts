import { Effect } from "effect"
import { Jobs } from "effect-jobs"

export const program = Effect.gen(function* () {
  const jobs = yield* Jobs.Jobs

  // Start running a queue on this node, here 4 jobs at a time, paused until resumed.
  yield* jobs.startQueue("reports", { concurrency: 4, paused: true, pollInterval: "5 seconds" })
  yield* jobs.resumeQueue("reports", { localOnly: true }) // on this node
  yield* jobs.scaleQueue("reports", 8, { localOnly: true }) // now 8 at a time on this node
  yield* jobs.pauseQueue("reports") // on every node: running jobs go on; no new ones are claimed

  const info = yield* jobs.queueInfo("reports")
  yield* Effect.log(`${info.running}/${info.limit} running here, ${info.states.available.count} waiting`)
  yield* Effect.log(yield* jobs.queues) // every queue on this node

  yield* jobs.resumeQueue("reports") // on every node
  yield* jobs.flush("reports") // until nothing is available or running in the whole queue
  yield* jobs.drain("reports") // until nothing of this queue runs on this node
  yield* jobs.stopQueue("reports") // let running jobs finish, then remove the queue from this node
})
