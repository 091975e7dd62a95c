/**
 * The shapes of the public services and their options. `Jobs.ts` and `JobsClient.ts` re-export
 * them; the runtime's internals import them from here, so no internal module depends on a
 * public one that in turn builds on the internals.
 *
 * The file is longer than the others because it is the public surface's one reference: every
 * method and option is documented here, where editors show it, and splitting it by topic would
 * only scatter what a user reads as one list.
 */
import type { Duration, Effect, Queue, Scope, Stream } from "effect"
import type * as Hook from "../../Hook.js"
import type * as Job from "../../Job.js"
import type {
  DatabaseError,
  InvalidJobArgs,
  InvalidJobOptions,
  JobDecodeError,
  JobNotFound,
  JobStateConflict,
  JobTypeMismatch,
  PayloadTooLarge,
  QueueAlreadyRunning,
  QueueConfigConflict,
  QueueInUse,
  QueueNotFound,
  SupervisorEscalation,
} from "../../JobError.js"
import type { JobEvent } from "../../JobEvent.js"
import type * as JobFilter from "../../JobFilter.js"
import type { JobId, JobRecord, JobState, Typed as TypedRecord } from "../../JobRecord.js"
import type * as Schedules from "../../Schedules.js"
import type * as Task from "../../Task.js"
import type * as Tasks from "../../Tasks.js"
import type * as Unique from "../../Unique.js"
import type { RestartPolicy } from "../supervisor.js"

export interface QueueConfig<R = never> {
  /** How many jobs of this queue run at once on this node. */
  readonly concurrency: number
  /** Start without claiming jobs until `resumeQueue`. Defaults to false. */
  readonly paused?: boolean | undefined
  /** Overrides the runtime's `pollInterval` for this queue. */
  readonly pollInterval?: Duration.DurationInput | undefined
  /**
   * At most this many jobs of the queue execute at once across all nodes (each node still
   * runs at most its own `concurrency`). Give every node the same value. Defaults to none.
   */
  readonly globalLimit?: number | undefined
  /**
   * At most `limit` attempts start per `period` across all nodes, counted over the last
   * `period` (a sliding window). Give every node the same value. Defaults to none.
   */
  readonly rateLimit?: { readonly limit: number; readonly period: Duration.DurationInput } | undefined
  /**
   * A queue that receives this queue's discarded jobs: instead of staying `discarded`, such a
   * job moves there, `available`, with its attempts reset, its error history kept and
   * `meta.deadLetteredFrom` set to this queue. Defaults to none.
   */
  readonly deadLetter?: string | undefined
  /**
   * Middleware and lifecycle callbacks for every job of this queue on this node (see `Hook`).
   * The queue's middleware runs outside the definitions' own, the first hook outermost; for
   * each event the queue's callbacks run before the definition's. Given in the layer's options,
   * their requirements become the layer's; a queue started with `startQueue` takes hooks that
   * require nothing. Defaults to none.
   */
  readonly hooks?: ReadonlyArray<Hook.Hook<R, never>> | undefined
}

/** The services the hooks of a set of queues require. */
export type QueuesContext<Q> = Q extends unknown
  ? { readonly [K in keyof Q]-?: HooksOf<Q[K]> }[keyof Q]
  : never

type HooksOf<C> = C extends QueueConfig<infer R> ? R : never

/** Which nodes a pause, resume or scale is for. */
export interface QueueTarget {
  /**
   * One live node, by name, through the database: it follows at once and for as long as it
   * runs (a later change cluster-wide, or on it, replaces it). Fails with `QueueNotFound` if
   * no live node of that name runs the queue. Defaults to every node.
   */
  readonly node?: string | undefined
}

export interface QueueControl extends QueueTarget {
  /**
   * Act on this node only, failing with `QueueNotFound` if it does not run the queue.
   * Defaults to false: every node (or the one `node`), through the database.
   */
  readonly localOnly?: boolean | undefined
}

export interface PruneConfig {
  /**
   * How long completed jobs are kept. Defaults to 1 day. Zero keeps none: a completion deletes
   * its job in the statement that would have marked it completed (its result goes with it),
   * which is the cheapest way to finish a job. `get` then fails with `JobNotFound` once the job
   * has completed, and a unique key that counts completed jobs is free again at once.
   */
  readonly completed?: Duration.DurationInput | undefined
  /** How long cancelled jobs are kept. Defaults to 7 days. */
  readonly cancelled?: Duration.DurationInput | undefined
  /** How long discarded jobs are kept. Defaults to 7 days. */
  readonly discarded?: Duration.DurationInput | undefined
  /** How often the pruner runs. Defaults to 1 minute. */
  readonly interval?: Duration.DurationInput | undefined
  /** Rows deleted per statement, so pruning never holds long locks. Defaults to 10,000. */
  readonly batchSize?: number | undefined
}

export interface VacuumConfig {
  /**
   * `"auto"` (the default) vacuums only where nothing else does: on PGlite, which has no
   * autovacuum, and on a PostgreSQL server whose autovacuum is off. `"always"` vacuums anyway.
   */
  readonly when?: "auto" | "always" | undefined
  /** How often the leader vacuums. Defaults to 30 seconds. */
  readonly interval?: Duration.DurationInput | undefined
}

export interface Options<
  Handlers extends ReadonlyArray<Job.Handler<any>> = ReadonlyArray<Job.Handler<any>>,
  TaskList extends ReadonlyArray<Task.Task> = ReadonlyArray<Task.Task>,
  Queues extends Readonly<Record<string, number | QueueConfig<any>>> = Readonly<
    Record<string, number | QueueConfig>
  >,
> {
  /** The queues this node runs: a name and its concurrency, or a `QueueConfig`. Defaults to `{ default: 10 }`. */
  readonly queues?: Queues | undefined
  /** The handlers this node can run. A job whose type has no handler here is retried later. */
  readonly handlers?: Handlers | undefined
  /** The PostgreSQL schema holding the jobs tables. Defaults to `"effect_jobs"`. */
  readonly schema?: string | undefined
  /** This node's name, stored in `attempted_by`. Defaults to host, pid and a random suffix. */
  readonly node?: string | undefined
  /** How often an idle queue looks for jobs when no notification came. Defaults to 1 second. */
  readonly pollInterval?: Duration.DurationInput | undefined
  /** How often scheduled and retryable jobs that are due become available. Defaults to 1 second. */
  readonly stageInterval?: Duration.DurationInput | undefined
  /** How long running jobs get to finish when the runtime stops. Defaults to 15 seconds. */
  readonly shutdownTimeout?: Duration.DurationInput | undefined
  /** Retention of finished jobs, or `false` to keep them. */
  readonly prune?: PruneConfig | false | undefined
  /**
   * Vacuuming the jobs table, which every job leaves two dead rows in, or `false` to leave it
   * to others. By default the leader vacuums every 30 seconds where nothing else does.
   */
  readonly vacuum?: VacuumConfig | false | undefined
  /** The largest encoded args accepted by insert, in bytes. Defaults to 1 MiB. */
  readonly maxPayloadBytes?: number | undefined
  /** Restart policy of every supervised fiber. */
  readonly restartPolicy?: RestartPolicy | undefined
  /** The most outcomes written in one statement. Defaults to 1,000. */
  readonly completionBatchSize?: number | undefined
  /** Events kept for a subscriber that falls behind before the oldest are dropped. Defaults to 4,096. */
  readonly eventsCapacity?: number | undefined
  /**
   * Whether each attempt runs in a `process {queue}` span. Defaults to yes when a tracer
   * other than Effect's built-in one is installed (OpenTelemetry, say), and no otherwise: the
   * built-in tracer exports nothing, and the span would cost a large share of a short job's time.
   */
  readonly tracing?: boolean | undefined
  /**
   * How an attempt's span relates to the span that inserted its job, whose W3C trace context
   * the insert stores in the job's meta under `traceparent`: `"link"` (a trace of its own, linked
   * to the insert), `"parent"` (a child of the insert, in its trace) or `"none"`. Defaults to
   * `"link"`: a job may run long after its insert, and more than once.
   */
  readonly traceLinking?: "link" | "parent" | "none" | undefined
  /**
   * The least time between two writes of one job's progress and log lines (`Job.progress`,
   * `Job.log`): reports in between are kept, the last progress winning, and written together.
   * Defaults to 1 second.
   */
  readonly progressInterval?: Duration.DurationInput | undefined
  /** How often this node records that it is alive. Defaults to 5 seconds. */
  readonly heartbeatInterval?: Duration.DurationInput | undefined
  /**
   * A node silent for this long is taken for dead: the jobs it left executing are rescued
   * (made retryable, with a `Rescued` entry in their errors). Defaults to 30 seconds.
   */
  readonly nodeTimeout?: Duration.DurationInput | undefined
  /** A job rescued this many times is discarded: it probably kills its process. Defaults to 3. */
  readonly maxRescues?: number | undefined
  /** How often the LISTEN connection proves itself with a ping. Defaults to 5 seconds. */
  readonly pingInterval?: Duration.DurationInput | undefined
  /**
   * How often the leader looks for orphans (see `orphans`) and logs a warning for each one
   * that appeared since it last looked. Defaults to 1 minute.
   */
  readonly orphanInterval?: Duration.DurationInput | undefined
  /**
   * Cron schedules to store (or update) at start-up: see `Schedules.cron`. The leader
   * enqueues their ticks. Schedules added at run time through `Schedules` need not be here.
   */
  readonly schedules?: ReadonlyArray<Schedules.CronSchedule> | undefined
  /** Stateful recurring tasks to register in this node's task manager at start-up: see `Task.make`. */
  readonly tasks?: TaskList | undefined
  /** Runs kept in each task's history. Defaults to 100. */
  readonly taskHistory?: number | undefined
}

export interface InsertOptions {
  /** Defaults to the definition's queue. */
  readonly queue?: string | undefined
  /**
   * Higher runs first; a whole number from -32,768 to 32,767. Defaults to the definition's
   * priority.
   */
  readonly priority?: number | undefined
  /** Run no earlier than this long from now. */
  readonly scheduleIn?: Duration.DurationInput | undefined
  /** Run no earlier than this time. */
  readonly scheduleAt?: Date | undefined
  /** Defaults to the definition's `maxAttempts`. */
  readonly maxAttempts?: number | undefined
  /** Free-form data stored with the job. */
  readonly meta?: Record<string, unknown> | undefined
  /** Overrides the definition's `unique`. */
  readonly unique?: Unique.Options<any> | undefined
  /**
   * The id of the resource the job is aimed at: required for a definition with a `resource`
   * type, refused for others. Up to 256 characters.
   */
  readonly resource?: string | undefined
}

/**
 * The options an insert of `D` takes: optional, unless `D` aims its jobs at a resource, when
 * they are required and must give `resource` (an untyped caller that leaves it out gets
 * `InvalidJobOptions`).
 */
export type InsertOptionsArg<D> =
  Job.TargetsResource<D> extends true
    ? [options: InsertOptions & { readonly resource: string }]
    : [options?: InsertOptions]

/** When `rescheduleForResource` moves jobs to: give one of the two. */
export interface RescheduleTo {
  /** Run no earlier than this long from now. */
  readonly scheduleIn?: Duration.DurationInput | undefined
  /** Run no earlier than this time. */
  readonly scheduleAt?: Date | undefined
}

/** An inserted job; `conflict` is true when a unique job already held its key and that job is returned instead. */
export type InsertedJob = JobRecord & { readonly conflict: boolean }

/** A filter, plus which page of the matching jobs to answer. */
export interface ListOptions extends JobFilter.Filter {
  /** Defaults to 50; at most 1,000. */
  readonly limit?: number | undefined
  /** `"newest"` (by id, descending) or `"oldest"`. Defaults to `"newest"`. */
  readonly order?: "newest" | "oldest" | undefined
  /**
   * Where the page starts: the `next` of the page before, from `listPage`. Pages by keyset,
   * so a page costs the same however deep it is, and a job inserted meanwhile neither
   * repeats nor hides a job. Refused with a filter or order other than the page's.
   */
  readonly cursor?: string | undefined
  /**
   * Jobs to skip. @deprecated Every page skipped is read again; use `cursor` (from
   * `listPage`). Cannot be combined with `cursor`. Defaults to 0.
   */
  readonly offset?: number | undefined
}

/** One page of a listing, and where the next one starts. */
export interface JobPage<A = JobRecord> {
  readonly jobs: ReadonlyArray<A>
  /** Pass as `cursor` for the next page; null when this page is the last. */
  readonly next: string | null
}

export interface CountOptions {
  /**
   * Counts exactly up to this many jobs; past it the answer is the planner's estimate,
   * flagged `estimated`, so a count never reads more rows than this. Defaults to 10,000; at
   * most 1,000,000.
   */
  readonly exactUpTo?: number | undefined
}

/** How many jobs match a filter. */
export interface JobCount {
  readonly count: number
  /** True when `count` is PostgreSQL's estimate, above `exactUpTo`. */
  readonly estimated: boolean
}

export interface BulkOptions {
  /** Jobs changed per statement, so a bulk action never holds many locks at once. Defaults to 1,000; at most 10,000. */
  readonly batchSize?: number | undefined
  /** Told after every batch how many jobs the action has looked at and changed so far. */
  readonly onBatch?:
    | ((progress: { readonly selected: number; readonly changed: number }) => Effect.Effect<void>)
    | undefined
}

export interface FailureGroupsOptions {
  /** How many of the newest failed jobs are grouped. Defaults to 5,000. */
  readonly scanned?: number | undefined
  /** The most groups answered, largest first. Defaults to 50. */
  readonly limit?: number | undefined
}

/** Failed jobs grouped by their last error: see `failureGroups`. */
export interface FailureGroups {
  readonly groups: ReadonlyArray<FailureGroup>
  /** True when there were more failed jobs than were grouped: the counts are of the newest. */
  readonly partial: boolean
}

/**
 * Failed jobs (retryable or discarded) whose last error has one tag and one message pattern:
 * the message with numbers written `N` and UUIDs `<uuid>`. Give `{ errorGroup: { tag, pattern } }`
 * as a filter to list or act on them.
 */
export interface FailureGroup {
  readonly tag: string
  readonly pattern: string
  /** The newest job's message, as it was, and that job's id. */
  readonly example: string
  readonly exampleId: number
  readonly retryable: number
  readonly discarded: number
  /** When the newest of these errors happened. */
  readonly lastAt: Date
}

/** Errors of a read through a job's definition. */
export type TypedReadError = JobTypeMismatch | JobDecodeError

export interface QueueInfo {
  readonly name: string
  /** Jobs of this queue running on this node. */
  readonly running: number
  /** This node's concurrency for the queue. */
  readonly limit: number
  readonly paused: boolean
  /** Whether this node runs the queue. */
  readonly runningHere: boolean
  /** Per state: how many jobs, and when the oldest and newest of them were inserted. */
  readonly states: Readonly<
    Record<JobState, { readonly count: number; readonly oldest: Date | null; readonly newest: Date | null }>
  >
}

export interface NodeInfo {
  readonly id: string
  readonly host: string
  readonly pid: number
  /** The queues it runs. */
  readonly queues: ReadonlyArray<string>
  readonly startedAt: Date
  readonly heartbeatAt: Date
  /** Each queue it runs, with the settings it runs it with, as of its last heartbeat. */
  readonly queueConfigs: Readonly<Record<string, NodeQueue>>
  /** The job types it has handlers for. */
  readonly handlers: ReadonlyArray<string>
}

/** A queue as one node runs it, as that node reported with its last heartbeat. */
export interface NodeQueue {
  /** How many of its jobs may run on that node at once now (after any scale). */
  readonly concurrency: number
  /** Whether that node claims nothing of it now. */
  readonly paused: boolean
  readonly globalLimit: number | null
  readonly rateLimit: { readonly limit: number; readonly periodMillis: number } | null
  readonly deadLetter: string | null
}

/** A queue's own retention per finished state, over the runtime's `prune`. */
export interface QueuePruning {
  /** How long its completed jobs are kept. Defaults to the runtime's `prune.completed`. */
  readonly completed?: Duration.DurationInput | undefined
  /** How long its cancelled jobs are kept. Defaults to the runtime's `prune.cancelled`. */
  readonly cancelled?: Duration.DurationInput | undefined
  /** How long its discarded jobs are kept. Defaults to the runtime's `prune.discarded`. */
  readonly discarded?: Duration.DurationInput | undefined
}

/** A stored retention, in milliseconds, per finished state; a state left out keeps the default. */
export interface StoredPruning {
  readonly completed?: number | undefined
  readonly cancelled?: number | undefined
  readonly discarded?: number | undefined
}

/** One queue of the cluster, as `listQueues` answers it. */
export interface ClusterQueue {
  readonly name: string
  /** The live nodes running it, oldest first, each with its settings and jobs executing there. */
  readonly nodes: ReadonlyArray<NodeQueue & { readonly node: string; readonly running: number }>
  /** The stored cluster-wide pause (nodes may also be paused alone: see `nodes`). */
  readonly paused: boolean
  /** The stored cluster-wide concurrency of a `scaleQueue`, or null. */
  readonly concurrency: number | null
  /** The global limit as the oldest node running it reports it, or null. */
  readonly globalLimit: number | null
  /** The rate limit as the oldest node running it reports it, or null. */
  readonly rateLimit: { readonly limit: number; readonly periodMillis: number } | null
  /** The dead-letter queue as the oldest node running it reports it, or null. */
  readonly deadLetter: string | null
  /** Its stored retention (`setQueuePruning`), or null for the runtime's default. */
  readonly pruning: StoredPruning | null
  /**
   * How many of its jobs are in each state: exact up to 10,000 a state, the planner's estimate
   * past that (a finished state's estimate is split among queues as its newest jobs are), so
   * the listing costs the same however many jobs the table holds.
   */
  readonly counts: Readonly<Record<JobState, number>>
  /** True when it holds available jobs that no live node runs. */
  readonly orphaned: boolean
}

/** Work that waits for nothing: see `orphans`. */
export interface Orphans {
  /** Queues holding available jobs that no live node runs, with how many. */
  readonly queues: ReadonlyArray<{ readonly queue: string; readonly available: number }>
  /**
   * Job types with waiting jobs (scheduled, available or retryable) that no live node has a
   * handler for, with how many and in which queues.
   */
  readonly types: ReadonlyArray<{
    readonly type: string
    readonly waiting: number
    readonly queues: ReadonlyArray<string>
  }>
}

/** The span `throughput` covers: the last 24 hours in 5-minute points, or the last 30 days in hours. */
export type ThroughputWindow = "day" | "month"

/** What finished in one point's span, and how long those jobs waited and ran. */
export interface ThroughputPoint {
  readonly start: Date
  readonly completed: number
  /** Jobs discarded: out of attempts, or discarded by their handler. */
  readonly failed: number
  readonly cancelled: number
  /**
   * Median and 95th percentile of the queue wait (due to started) and run time (started to
   * finished) of the last attempt of the jobs completed or failed, in milliseconds, to within
   * about 9%; null when none finished.
   */
  readonly waitP50: number | null
  readonly waitP95: number | null
  readonly runP50: number | null
  readonly runP95: number | null
}

export interface Throughput {
  readonly window: ThroughputWindow
  /** The span of one point. */
  readonly stepMillis: number
  /** Oldest first, one per step over the whole window; the last one is still filling. */
  readonly points: ReadonlyArray<ThroughputPoint>
}

/** What `pauseQueue` answers: whether the queue was paused already. */
export type PauseResult = "paused" | "already_paused"
/** What `resumeQueue` answers: whether the queue was running already. */
export type ResumeResult = "resumed" | "already_active"
/** What `ensureQueue` answers: whether it started the queue or found it running as asked. */
export type EnsureResult = "started" | "running"

export interface DeleteQueueOptions {
  /** Delete the queue's jobs too, whatever their state. Defaults to false: they stay. */
  readonly jobs?: boolean | undefined
}

export type InsertError = InvalidJobOptions | InvalidJobArgs | PayloadTooLarge | DatabaseError

/** A queue as it runs on this node, as `Jobs.queues` answers it. */
export interface QueueStatus {
  readonly name: string
  /** How many of its jobs may run here at once. */
  readonly limit: number
  /** How many run here now. */
  readonly running: number
  /** Whether it claims nothing here now. */
  readonly paused: boolean
}

/** What both a worker node (`Jobs`) and a producer-only client (`JobsClient`) can do with stored jobs. */
export interface JobsAdmin {
  /**
   * Stores a job. Uses the app's `SqlClient`, so inside `sql.withTransaction` the job
   * commits or rolls back with the app's own writes.
   */
  readonly insert: <D extends Job.Definition>(
    definition: D,
    args: Job.Args<D>,
    ...options: InsertOptionsArg<D>
  ) => Effect.Effect<InsertedJob, InsertError>
  /** Stores many jobs of one definition with one statement. All or none are written. */
  readonly insertMany: <D extends Job.Definition>(
    definition: D,
    args: ReadonlyArray<Job.Args<D>>,
    ...options: InsertOptionsArg<D>
  ) => Effect.Effect<ReadonlyArray<InsertedJob>, InsertError>
  /**
   * A job by id. Given its definition, the job's args and result come decoded and typed;
   * a job of another type fails with `JobTypeMismatch`, one whose args or result do not
   * decode with `JobDecodeError`.
   */
  readonly get: {
    (id: JobId | number): Effect.Effect<JobRecord, JobNotFound | DatabaseError>
    <D extends Job.Definition>(
      id: JobId | number,
      definition: D,
    ): Effect.Effect<TypedRecord<D>, JobNotFound | TypedReadError | DatabaseError>
  }
  /**
   * The jobs that match the filter, newest first unless `order` says otherwise. Given a
   * definition, only jobs of its type, decoded and typed (see `get`).
   */
  readonly list: {
    (options?: ListOptions): Effect.Effect<ReadonlyArray<JobRecord>, InvalidJobOptions | DatabaseError>
    <D extends Job.Definition>(
      options: ListOptions,
      definition: D,
    ): Effect.Effect<ReadonlyArray<TypedRecord<D>>, InvalidJobOptions | TypedReadError | DatabaseError>
  }
  /** As `list`, with the cursor of the next page. */
  readonly listPage: {
    (options?: ListOptions): Effect.Effect<JobPage, InvalidJobOptions | DatabaseError>
    <D extends Job.Definition>(
      options: ListOptions,
      definition: D,
    ): Effect.Effect<JobPage<TypedRecord<D>>, InvalidJobOptions | TypedReadError | DatabaseError>
  }
  /** How many jobs match the filter: exact up to `exactUpTo`, estimated past it. */
  readonly count: (
    filter?: JobFilter.Filter,
    options?: CountOptions,
  ) => Effect.Effect<JobCount, InvalidJobOptions | DatabaseError>
  /**
   * Cancels every matching job that has not finished, a batch at a time, and answers how many
   * it cancelled. Executing ones are interrupted wherever they run, as by `cancel`. An empty
   * filter is refused.
   */
  readonly cancelAll: (
    filter: JobFilter.Filter,
    options?: BulkOptions,
  ) => Effect.Effect<number, InvalidJobOptions | DatabaseError>
  /**
   * Makes every matching job that is not running available now, as `retry` does, a batch at a
   * time; answers how many. A unique job whose key another job holds now is left as it is.
   * An empty filter is refused.
   */
  readonly retryAll: (
    filter: JobFilter.Filter,
    options?: BulkOptions,
  ) => Effect.Effect<number, InvalidJobOptions | DatabaseError>
  /**
   * Discards every matching job that waits to run (scheduled, available or retryable), a
   * batch at a time, and answers how many: they will not run, and stay as discarded until
   * pruned. An empty filter is refused.
   */
  readonly discardAll: (
    filter: JobFilter.Filter,
    options?: BulkOptions,
  ) => Effect.Effect<number, InvalidJobOptions | DatabaseError>
  /**
   * The newest failed jobs (retryable or discarded) grouped by their last error's tag and
   * message pattern, largest group first: what fails, and how often.
   */
  readonly failureGroups: (
    options?: FailureGroupsOptions,
  ) => Effect.Effect<FailureGroups, InvalidJobOptions | DatabaseError>
  /**
   * Deletes every matching job that is not executing, a batch at a time; answers how many.
   * An empty filter is refused.
   */
  readonly deleteAll: (
    filter: JobFilter.Filter,
    options?: BulkOptions,
  ) => Effect.Effect<number, InvalidJobOptions | DatabaseError>
  /** Cancels a pending or executing job; an executing one is interrupted wherever it runs. */
  readonly cancel: (
    id: JobId | number,
  ) => Effect.Effect<JobRecord, JobNotFound | JobStateConflict | DatabaseError>
  /** Makes a job available to run now, whatever attempts it has used. */
  readonly retry: (
    id: JobId | number,
  ) => Effect.Effect<JobRecord, JobNotFound | JobStateConflict | DatabaseError>
  /** Deletes a job that is not executing. */
  readonly delete: (id: JobId | number) => Effect.Effect<void, JobNotFound | JobStateConflict | DatabaseError>
  /** The node currently leading the maintenance work, if any. */
  readonly leader: Effect.Effect<string | null, DatabaseError>
  /**
   * Counts for any queue the cluster knows; `running`, `limit` and `paused` describe this node
   * (zero, and the stored cluster-wide pause, if the queue does not run here). Fails with
   * `QueueNotFound` for a name that no live node runs, no job is in and nothing is stored for.
   */
  readonly queueInfo: (name: string) => Effect.Effect<QueueInfo, QueueNotFound | DatabaseError>
  /**
   * Every queue the cluster knows, by name: run by a live node (as of its last heartbeat),
   * holding jobs, or with stored state (a pause, a scale, a retention). Counts every job.
   */
  readonly listQueues: Effect.Effect<ReadonlyArray<ClusterQueue>, DatabaseError>
  /**
   * Work that waits for nothing: queues holding available jobs that no live node runs, and job
   * types with waiting jobs that no live node has a handler for.
   */
  readonly orphans: Effect.Effect<Orphans, DatabaseError>
  /**
   * Stores the queue's own retention per finished state, over the runtime's `prune` (a state
   * left out keeps the default); null removes it. The leader's pruner follows it.
   */
  readonly setQueuePruning: (
    name: string,
    pruning: QueuePruning | null,
  ) => Effect.Effect<void, InvalidJobOptions | DatabaseError>
  /**
   * Deletes the queue's finished jobs past their retention now, paused or not, and answers how
   * many. The retention is the queue's own, else the runtime's `prune` on a worker, else (on a
   * client, or with `prune: false`) the defaults: 1 day completed, 7 days cancelled and discarded.
   */
  readonly pruneQueue: (name: string) => Effect.Effect<number, QueueNotFound | DatabaseError>
  /**
   * Deletes the queue's stored state (pause, scale, retention, rate-limit starts) and, with
   * `jobs: true`, all its jobs; answers how many jobs were deleted. Refused with `QueueInUse`
   * while a live node runs it; works for an orphaned queue.
   */
  readonly deleteQueue: (
    name: string,
    options?: DeleteQueueOptions,
  ) => Effect.Effect<number, QueueNotFound | QueueInUse | DatabaseError>
  /**
   * Jobs finished per step, with their queue wait and run time, over the last day or month:
   * read from the aggregates the leader stores every minute (minutes kept a day, hours 30
   * days), never from the jobs. A job deleted at completion (completed jobs kept for zero
   * time) is not counted.
   */
  readonly throughput: (window: ThroughputWindow) => Effect.Effect<Throughput, DatabaseError>
  /** The nodes whose heartbeat is recent, this one included, oldest first. */
  readonly nodes: Effect.Effect<ReadonlyArray<NodeInfo>, DatabaseError>
  /**
   * The unfinished jobs aimed at a resource (scheduled, available, retryable or executing),
   * in the order they are due.
   */
  readonly resourceJobs: (
    resourceType: string,
    resourceId: string,
  ) => Effect.Effect<ReadonlyArray<JobRecord>, DatabaseError>
  /**
   * Cancels, in one statement, every job aimed at the resource that is still waiting
   * (scheduled, available or retryable), and answers them. A job already executing is left
   * to finish: cancel it by id to interrupt it.
   */
  readonly cancelForResource: (
    resourceType: string,
    resourceId: string,
  ) => Effect.Effect<ReadonlyArray<JobRecord>, DatabaseError>
  /**
   * Moves every job aimed at the resource that is still waiting to a new time, in one
   * statement, and answers them. Their attempts are kept.
   */
  readonly rescheduleForResource: (
    resourceType: string,
    resourceId: string,
    to: RescheduleTo,
  ) => Effect.Effect<ReadonlyArray<JobRecord>, InvalidJobOptions | DatabaseError>
}

/** The `Jobs` service of a worker node: the stored jobs, plus the queues running here and their events. */
export interface JobsService extends JobsAdmin {
  /** This node's name. */
  readonly node: string
  /**
   * Lifecycle events of jobs on this node, and of inserts made through it. Subscribes when
   * the stream starts running; use `subscribe` to be sure of seeing events from a known point.
   * `Inserted` is published when the insert statement returns, which inside a transaction is
   * before the commit, and can come after the job's `Started` when a dispatcher here claims it
   * at once. A job's own run events (`Started`, then its outcome) are always in order.
   */
  readonly events: Stream.Stream<JobEvent>
  /** A subscription to the events, open from the moment this effect returns until the scope closes. */
  readonly subscribe: Effect.Effect<Queue.Dequeue<JobEvent>, never, Scope.Scope>
  readonly startQueue: (
    name: string,
    config: number | QueueConfig,
  ) => Effect.Effect<void, QueueAlreadyRunning | InvalidJobOptions>
  /**
   * Starts the queue here unless it runs here already: answers `"started"`, or `"running"` when
   * it runs with the same settings. Settings that differ from those it was started with fail
   * with `QueueConfigConflict` and change nothing (scale it, or stop and start it).
   */
  readonly ensureQueue: (
    name: string,
    config: number | QueueConfig,
  ) => Effect.Effect<EnsureResult, QueueConfigConflict | InvalidJobOptions>
  /** Stops claiming, lets running jobs finish (up to the shutdown timeout) and removes the queue. */
  readonly stopQueue: (name: string) => Effect.Effect<void, QueueNotFound>
  /**
   * Stops claiming jobs of the queue on every node (running jobs finish). The state is
   * stored: a node starting later starts the queue paused. With `localOnly`, this node only.
   * Answers `"already_paused"` when it was paused already (stored so, or here with `localOnly`).
   */
  readonly pauseQueue: (
    name: string,
    control?: QueueControl,
  ) => Effect.Effect<PauseResult, QueueNotFound | InvalidJobOptions | DatabaseError>
  /**
   * Undoes `pauseQueue`, on every node unless `localOnly`. Answers `"already_active"` when
   * nothing was paused: not stored as paused, and no live node reporting it paused (with
   * `localOnly`: not paused here).
   */
  readonly resumeQueue: (
    name: string,
    control?: QueueControl,
  ) => Effect.Effect<ResumeResult, QueueNotFound | InvalidJobOptions | DatabaseError>
  /**
   * Sets the queue's concurrency on every node that runs it (not stored: a node starting
   * later uses its own config), or on this node only with `localOnly`.
   */
  readonly scaleQueue: (
    name: string,
    concurrency: number,
    control?: QueueControl,
  ) => Effect.Effect<void, QueueNotFound | InvalidJobOptions | DatabaseError>
  /** The queues running on this node. */
  readonly queues: Effect.Effect<ReadonlyArray<QueueStatus>>
  /** Waits until no job of the queue is running on this node and their outcomes are written. */
  readonly drain: (name: string) => Effect.Effect<void, QueueNotFound>
  /** Waits until the queue has nothing available or executing, and outcomes are written. */
  readonly flush: (name: string) => Effect.Effect<void, QueueNotFound | DatabaseError>
  /**
   * Never succeeds; fails when a supervised part of the runtime failed more often than its
   * restart policy allows. The runtime also interrupts the fiber that built it.
   */
  readonly awaitFailure: Effect.Effect<never, SupervisorEscalation>
}

/** The `JobsClient` service: what a process that runs no queue can do, through the database alone. */
export interface JobsClientService extends JobsAdmin {
  /**
   * Stops claiming jobs of the queue on every node (running jobs finish). The state is
   * stored: a node starting later starts the queue paused. Answers `"already_paused"` when
   * it was stored as paused already.
   */
  readonly pauseQueue: (
    name: string,
    target?: QueueTarget,
  ) => Effect.Effect<PauseResult, QueueNotFound | InvalidJobOptions | DatabaseError>
  /**
   * Undoes `pauseQueue` on every node. Answers `"already_active"` when nothing was paused: not
   * stored as paused, and no live node reporting it paused.
   */
  readonly resumeQueue: (
    name: string,
    target?: QueueTarget,
  ) => Effect.Effect<ResumeResult, QueueNotFound | InvalidJobOptions | DatabaseError>
  /**
   * Sets the queue's concurrency on every node that runs it now (not stored: a node starting
   * later uses its own config).
   */
  readonly scaleQueue: (
    name: string,
    concurrency: number,
    target?: QueueTarget,
  ) => Effect.Effect<void, QueueNotFound | InvalidJobOptions | DatabaseError>
  /**
   * Every stored recurring task, by id, whichever nodes register it, with the live nodes
   * that do; hidden ones only with `includeHidden`. Given a task's definition: that task,
   * its state decoded. As `Tasks.stats`.
   */
  readonly taskStats: Tasks.ReadStats
  /** A task's runs, newest first (at most `limit`, default 50), by id or through its definition. */
  readonly taskHistory: Tasks.ReadHistory
  /**
   * Asks for a run of the task now, on a node that has it registered (woken at once), paused
   * or not. As `Tasks.requestRun`: answers the task's stats; `TaskNotFound` for an unknown id.
   */
  readonly requestTaskRun: Tasks.TaskControls["requestRun"]
  /** Stops starting the task when it comes due, on every node, until `resumeTask`. As `Tasks.pause`. */
  readonly pauseTask: Tasks.TaskControls["pause"]
  /** Undoes `pauseTask`; a run that came due meanwhile starts at once. As `Tasks.resume`. */
  readonly resumeTask: Tasks.TaskControls["resume"]
}
