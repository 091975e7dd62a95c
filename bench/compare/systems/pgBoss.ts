/**
 * pg-boss 10, the newest major version whose `engines` accepts Node 20 (11 and later ask for
 * Node 22). It has no LISTEN wake-up: a work() loop fetches up to `batchSize` jobs, hands
 * them to the handler as one array, and waits out the rest of its polling interval before
 * fetching again, so throughput is about loops × batchSize per interval. The comparison runs
 * 4 loops at the smallest interval it accepts (0.5 s); the handler calls the no-op for each
 * job of the batch. It completes a batch without awaiting the write, so completions are
 * confirmed by the store.
 */
import PgBoss from "pg-boss"
import { benchPackageVersion, type OnJob, type Payload, pgUrl, queueName } from "../common.js"
import { deadTuples, query } from "../control.js"
import type { OpenOptions, System, SystemModule } from "./system.js"

const schema = "pgboss"
const loops = 4

const make = (options: OpenOptions): System => {
  const max = options.maxPool ?? 10
  const work = {
    batchSize: Math.max(1, Math.round(options.concurrency / loops)),
    pollingIntervalSeconds: 0.5,
  }
  const settings = {
    constructor: { connectionString: "(bench database)", max },
    createQueue: { name: queueName, policy: "standard" },
    work: options.role === "worker" ? { loops, ...work } : "none (producer)",
    other: "every other option at its default (maintenance and scheduling on)",
  }
  const boss = new PgBoss({ connectionString: pgUrl, max })
  boss.on("error", (error) => console.error("[pg-boss] error:", error))
  let partition = "job"
  return {
    settings,
    open: async () => {
      await boss.start()
      await boss.createQueue(queueName, { name: queueName, policy: "standard" })
      const [row] = await query<{ partition_name: string }>(
        `SELECT partition_name FROM ${schema}.queue WHERE name = $1`,
        [queueName],
      )
      partition = row?.partition_name ?? partition
    },
    insertMany: (jobs) => boss.insert(jobs.map((data) => ({ name: queueName, data }))),
    insertOne: async (job) => {
      await boss.send(queueName, job)
    },
    start: async (onJob: OnJob) => {
      for (let i = 0; i < loops; i++) {
        await boss.work<Payload>(queueName, work, async (jobs) => {
          for (const job of jobs) onJob(job.data)
        })
      }
    },
    counts: async () => {
      const rows = await query<{ state: string; count: number }>(
        `SELECT state::text, count(*)::int AS count FROM ${schema}.job WHERE name = $1 GROUP BY state`,
        [queueName],
      )
      const of = (states: ReadonlyArray<string>) =>
        rows.filter((r) => states.includes(r.state)).reduce((sum, r) => sum + r.count, 0)
      return {
        pending: of(["created", "retry", "active"]),
        completed: of(["completed"]),
        failed: of(["failed", "cancelled"]),
      }
    },
    close: async () => {
      await boss.stop({ graceful: true, wait: true, timeout: 30_000 })
      return deadTuples(schema, partition)
    },
  }
}

export const pgBoss: SystemModule = {
  make,
  versions: async () => ({ "pg-boss": benchPackageVersion("pg-boss") }),
}
