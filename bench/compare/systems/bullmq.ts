/**
 * BullMQ on Redis, and on the PostgreSQL backend that BullMQ 6 ships (`createPostgresBackend`,
 * schema `bullmq`, LISTEN/NOTIFY wake-ups). The same Queue and Worker classes on both; the
 * Worker is built with `autorun: false` and `start` runs it. Completed jobs are kept (its
 * default), as every other system here keeps them or deletes them by its own default.
 */
import { createPostgresBackend, Queue, Worker, withBackend } from "bullmq"
import {
  benchPackageVersion,
  type OnJob,
  type Payload,
  pgUrl,
  queueName,
  redis as redisServer,
} from "../common.js"
import { deadTuples, query, redisMemory } from "../control.js"
import type { Counts, OpenOptions, System, SystemModule } from "./system.js"

interface Client {
  readonly queue: Queue<Payload>
  readonly worker: (processor: (job: { data: Payload }) => Promise<void>) => Worker<Payload>
  readonly counts: () => Promise<Counts>
  readonly stats: () => Promise<Record<string, unknown>>
  readonly settings: Record<string, unknown>
}

const onRedis = (options: OpenOptions): Client => {
  const connection = { host: redisServer.host, port: redisServer.port, db: redisServer.db }
  const queue = new Queue<Payload>(queueName, { connection })
  return {
    queue,
    worker: (processor) =>
      new Worker<Payload>(queueName, processor, {
        connection,
        concurrency: options.concurrency,
        autorun: false,
      }),
    counts: async () => {
      const c = await queue.getJobCounts("wait", "prioritized", "delayed", "active", "completed", "failed")
      return {
        pending: (c.wait ?? 0) + (c.prioritized ?? 0) + (c.delayed ?? 0) + (c.active ?? 0),
        completed: c.completed ?? 0,
        failed: c.failed ?? 0,
      }
    },
    stats: redisMemory,
    settings: {
      connection: { ...connection, client: "ioredis" },
      worker: options.role === "worker" ? { concurrency: options.concurrency } : "none (producer)",
    },
  }
}

const onPostgres = (options: OpenOptions): Client => {
  const pg = withBackend(createPostgresBackend)
  const max = options.maxPool ?? 10
  const connection = { connectionString: pgUrl, max, migrate: true }
  const queue = new pg.Queue<Payload>(queueName, { connection })
  return {
    queue: queue as unknown as Queue<Payload>,
    worker: (processor) =>
      new pg.Worker<Payload>(queueName, processor, {
        connection,
        concurrency: options.concurrency,
        autorun: false,
      }) as unknown as Worker<Payload>,
    counts: async () => {
      const rows = await query<{ state: string; count: number }>(
        "SELECT state::text, count(*)::int AS count FROM bullmq.job WHERE queue = $1 GROUP BY state",
        [queueName],
      )
      const of = (states: ReadonlyArray<string>) =>
        rows.filter((r) => states.includes(r.state)).reduce((sum, r) => sum + r.count, 0)
      return {
        pending: of(["waiting", "active", "delayed", "waiting-children"]),
        completed: of(["completed"]),
        failed: of(["failed"]),
      }
    },
    stats: () => deadTuples("bullmq", "job"),
    settings: {
      backend: "withBackend(createPostgresBackend)",
      connection: { connectionString: "(bench database)", max, migrate: true, schema: "bullmq (default)" },
      worker: options.role === "worker" ? { concurrency: options.concurrency } : "none (producer)",
    },
  }
}

const make =
  (store: "redis" | "postgres") =>
  (options: OpenOptions): System => {
    const client = store === "redis" ? onRedis(options) : onPostgres(options)
    let worker: Worker<Payload> | undefined
    let onJob: OnJob = () => {}
    if (options.role === "worker") {
      worker = client.worker(async (job) => {
        onJob(job.data)
      })
      worker.on("error", (error) => console.error("[bullmq] worker error:", error))
    }
    return {
      settings: { ...client.settings, other: "every other option at its default" },
      open: async () => {
        await client.queue.waitUntilReady()
        await worker?.waitUntilReady()
      },
      insertMany: async (jobs) => {
        await client.queue.addBulk(jobs.map((data) => ({ name: "noop", data })))
      },
      insertOne: async (job) => {
        await client.queue.add("noop", job)
      },
      start: async (handle) => {
        onJob = handle
        void worker!.run()
      },
      counts: client.counts,
      close: async () => {
        await worker?.close()
        await client.queue.close()
        return client.stats()
      },
    }
  }

const versions = async () => ({
  bullmq: benchPackageVersion("bullmq"),
  ioredis: benchPackageVersion("ioredis"),
  pg: benchPackageVersion("pg"),
})

export const redis: SystemModule = { make: make("redis"), versions }
export const postgres: SystemModule = { make: make("postgres"), versions }
