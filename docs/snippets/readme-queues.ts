import { Jobs } from "effect-jobs"

export const JobsLive = Jobs.layer({
  queues: {
    default: 10,
    partner: {
      concurrency: 5, // at once on this node
      globalLimit: 20, // at once across all nodes
      rateLimit: { limit: 100, period: "1 minute" }, // attempts started, across all nodes
      deadLetter: "partner-failed", // where the jobs it discards go instead
    },
  },
})
