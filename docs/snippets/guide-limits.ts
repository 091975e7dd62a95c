import { Jobs } from "effect-jobs"

// Give every node that runs the queue these same values.
export const JobsLive = Jobs.layer({
  queues: {
    "partner-api": {
      concurrency: 10, // at most 10 at once on this node
      globalLimit: 25, // at most 25 at once across all nodes
      rateLimit: { limit: 600, period: "1 minute" }, // at most 600 attempts started in any minute
      pollInterval: "200 millis", // a queue held back by a limit looks again this often
    },
  },
})
