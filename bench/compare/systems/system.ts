/**
 * The shape every job system takes in the comparison, and the list of systems. The list
 * loads each system's module only when a child process asks for it, so the orchestrating
 * process never loads a job library.
 */
import type { OnJob, Payload } from "../common.js"

export type Store = "postgres" | "pglite" | "redis"

export interface OpenOptions {
  /** "worker" consumes jobs; "producer" only inserts them (it never claims a job). */
  readonly role: "worker" | "producer"
  /** The concurrency value, in this system's own terms (see `SystemInfo.concurrency`). */
  readonly concurrency: number
  /** The most connections the system's pool may open, when the workload needs a cap. */
  readonly maxPool?: number
}

/** How many jobs the store holds, by outcome. `completed` is null where completed jobs are deleted. */
export interface Counts {
  readonly pending: number
  readonly completed: number | null
  readonly failed: number
}

export interface System {
  /** The options actually passed to the library, recorded with every result. */
  readonly settings: Record<string, unknown>
  /** Connects and creates the system's tables; claims nothing yet. */
  open(): Promise<void>
  /** Inserts jobs with the system's bulk API, in one call. */
  insertMany(jobs: ReadonlyArray<Payload>): Promise<void>
  /** Inserts one job with the system's single-insert API. */
  insertOne(job: Payload): Promise<void>
  /** Starts consuming; each job's handler calls `onJob` with its payload and does nothing else. */
  start(onJob: OnJob): Promise<void>
  /** The jobs as the store sees them. */
  counts(): Promise<Counts>
  /** Stops consuming (gracefully), closes every connection, and reports the store's own figures. */
  close(): Promise<Record<string, unknown>>
}

export interface SystemModule {
  readonly make: (options: OpenOptions) => System
  /** Versions of the packages the system runs on. */
  readonly versions: () => Promise<Record<string, string>>
}

export interface SystemInfo {
  readonly id: string
  readonly label: string
  readonly store: Store
  /** The W1 sweep: concurrency values tried. */
  readonly sweep: ReadonlyArray<number>
  /** What a concurrency value means for this system. */
  readonly concurrency: string
  /** Whether several processes can share its store (W5). */
  readonly multiProcess: boolean
  /** The PostgreSQL schema holding its tables, on the comparison's database. */
  readonly schema?: string
  readonly load: () => Promise<SystemModule>
}

export const systems: ReadonlyArray<SystemInfo> = [
  {
    id: "effect-jobs-pg",
    label: "effect-jobs (PostgreSQL)",
    store: "postgres",
    sweep: [100, 500, 1000, 2000],
    concurrency: "the queue's concurrency (jobs running at once in the process)",
    multiProcess: true,
    schema: "effect_jobs",
    load: () => import("./effectJobs.js").then((m) => m.postgres),
  },
  {
    id: "effect-jobs-pg-delete",
    label: "effect-jobs (PostgreSQL, completed: 0)",
    store: "postgres",
    sweep: [100, 500, 1000, 2000],
    concurrency:
      "the queue's concurrency (jobs running at once in the process), with prune: { completed: 0 }: a completion deletes its job, as graphile-worker's does",
    multiProcess: true,
    schema: "effect_jobs",
    load: () => import("./effectJobs.js").then((m) => m.postgresDeleting),
  },
  {
    id: "effect-jobs-pglite",
    label: "effect-jobs (PGlite, in memory)",
    store: "pglite",
    sweep: [100, 500, 1000],
    concurrency: "the queue's concurrency (jobs running at once in the process)",
    multiProcess: false,
    load: () => import("./effectJobs.js").then((m) => m.pglite),
  },
  {
    id: "graphile-worker",
    label: "graphile-worker (defaults)",
    store: "postgres",
    sweep: [10, 24, 50],
    concurrency: "concurrentJobs; maxPoolSize is max(10, concurrency + 2) as its docs advise",
    multiProcess: true,
    schema: "graphile_worker",
    load: () => import("./graphile.js").then((m) => m.defaults),
  },
  {
    id: "graphile-worker-tuned",
    label: "graphile-worker (tuned)",
    store: "postgres",
    sweep: [10, 24, 50],
    concurrency:
      "concurrentJobs, with localQueue.size 500 and completeJobBatchDelay/failJobBatchDelay 0 as in its own performance test; maxPoolSize max(10, concurrency + 2)",
    multiProcess: true,
    schema: "graphile_worker",
    load: () => import("./graphile.js").then((m) => m.tuned),
  },
  {
    id: "pg-boss",
    label: "pg-boss",
    store: "postgres",
    sweep: [1000, 4000, 16000],
    concurrency:
      "jobs fetched at once: 4 work() loops, each with batchSize = concurrency / 4, polling every 0.5 s (its minimum)",
    multiProcess: true,
    schema: "pgboss",
    load: () => import("./pgBoss.js").then((m) => m.pgBoss),
  },
  {
    id: "bullmq-redis",
    label: "BullMQ (Redis)",
    store: "redis",
    sweep: [100, 500, 1000],
    concurrency: "the Worker's concurrency",
    multiProcess: true,
    load: () => import("./bullmq.js").then((m) => m.redis),
  },
  {
    id: "bullmq-pg",
    label: "BullMQ (PostgreSQL backend)",
    store: "postgres",
    sweep: [100, 500, 1000],
    concurrency: "the Worker's concurrency",
    multiProcess: true,
    schema: "bullmq",
    load: () => import("./bullmq.js").then((m) => m.postgres),
  },
]

export const systemById = (id: string): SystemInfo => {
  const found = systems.find((s) => s.id === id)
  if (!found) throw new Error(`unknown system ${id}; known: ${systems.map((s) => s.id).join(", ")}`)
  return found
}
