/**
 * A producer-only client: insert, read and manage jobs from a process that runs none (a web
 * server, a script, an admin tool), as BullMQ's `Queue` or graphile-worker's `WorkerUtils`.
 *
 * `JobsClient.layer` joins no cluster: it runs no queue, no heartbeat, no maintenance and no
 * leader election, never appears in `Jobs.nodes`, and needs no LISTEN connection. It does
 * not migrate unless asked, and refuses a schema at another level than it knows. `Jobs.layer`
 * provides `JobsClient` too, so code written against it runs on a worker as well.
 */
import { SqlClient } from "@effect/sql/SqlClient"
import { Context, Duration, Effect, Layer, Option } from "effect"
import * as Api from "./internal/api/api.js"
import { checkSchemaName, checkWholeNumber, invalid, maxInt } from "./internal/api/validation.js"
import * as CronEnqueuer from "./internal/maintenance/cronEnqueuer.js"
import { checkSchemaLevel, migrate } from "./internal/store/migrations.js"
import { PreparedStatements } from "./internal/store/prepared.js"
import { toDatabaseError } from "./internal/store/retryDatabase.js"
import * as Store from "./internal/store/store.js"
import type * as Job from "./Job.js"
import {
  type DatabaseError,
  type InvalidJobOptions,
  type JobNotFound,
  type JobStateConflict,
  type QueueNotFound,
  SchemaNotReady,
} from "./JobError.js"
import type { JobId, JobRecord } from "./JobRecord.js"
import type * as Jobs from "./Jobs.js"
import * as Schedules from "./Schedules.js"
import type * as Tasks from "./Tasks.js"

export interface Options {
  /** The PostgreSQL schema holding the jobs tables. Defaults to `"effect_jobs"`. */
  readonly schema?: string | undefined
  /**
   * Apply the library's migrations at build, as `Jobs.layer` does. Defaults to false: the
   * workers own the schema, and a client refuses one that is missing or older with
   * `SchemaNotReady` and changes nothing.
   */
  readonly migrate?: boolean | undefined
  /** The largest encoded args accepted by insert, in bytes. Give the workers' value. Defaults to 1 MiB. */
  readonly maxPayloadBytes?: number | undefined
  /** A node silent for this long is left out of `nodes`. Give the workers' value. Defaults to 30 seconds. */
  readonly nodeTimeout?: Duration.DurationInput | undefined
}

export class JobsClient extends Context.Tag("effect-jobs/JobsClient")<
  JobsClient,
  {
    /**
     * Stores a job. Uses the app's `SqlClient`, so inside `sql.withTransaction` the job
     * commits or rolls back with the app's own writes; its commit wakes the workers.
     */
    readonly insert: <D extends Job.Definition>(
      definition: D,
      args: Job.Args<D>,
      options?: Jobs.InsertOptions,
    ) => Effect.Effect<Jobs.InsertedJob, Jobs.InsertError>
    /** Stores many jobs of one definition with one statement. All or none are written. */
    readonly insertMany: <D extends Job.Definition>(
      definition: D,
      args: ReadonlyArray<Job.Args<D>>,
      options?: Jobs.InsertOptions,
    ) => Effect.Effect<ReadonlyArray<Jobs.InsertedJob>, Jobs.InsertError>
    readonly get: (id: JobId | number) => Effect.Effect<JobRecord, JobNotFound | DatabaseError>
    /** Newest first. */
    readonly list: (
      options?: Jobs.ListOptions,
    ) => Effect.Effect<ReadonlyArray<JobRecord>, InvalidJobOptions | DatabaseError>
    /** Cancels a pending or executing job; an executing one is interrupted wherever it runs. */
    readonly cancel: (
      id: JobId | number,
    ) => Effect.Effect<JobRecord, JobNotFound | JobStateConflict | DatabaseError>
    /** Makes a job available to run now, whatever attempts it has used. */
    readonly retry: (
      id: JobId | number,
    ) => Effect.Effect<JobRecord, JobNotFound | JobStateConflict | DatabaseError>
    /** Deletes a job that is not executing. */
    readonly delete: (
      id: JobId | number,
    ) => Effect.Effect<void, JobNotFound | JobStateConflict | DatabaseError>
    /**
     * Stops claiming jobs of the queue on every node (running jobs finish). The state is
     * stored: a node starting later starts the queue paused.
     */
    readonly pauseQueue: (name: string) => Effect.Effect<void, InvalidJobOptions | DatabaseError>
    /** Undoes `pauseQueue` on every node. */
    readonly resumeQueue: (name: string) => Effect.Effect<void, InvalidJobOptions | DatabaseError>
    /**
     * Sets the queue's concurrency on every node that runs it now (not stored: a node starting
     * later uses its own config).
     */
    readonly scaleQueue: (
      name: string,
      concurrency: number,
    ) => Effect.Effect<void, InvalidJobOptions | DatabaseError>
    /**
     * Counts for any queue. `running`, `limit` and `runningHere` describe the process asking
     * (zero and false in a client); `paused` is this node's state where the queue runs here,
     * and the stored, cluster-wide one elsewhere.
     */
    readonly queueInfo: (name: string) => Effect.Effect<Jobs.QueueInfo, QueueNotFound | DatabaseError>
    /** The worker nodes whose heartbeat is recent, oldest first. A client is never among them. */
    readonly nodes: Effect.Effect<ReadonlyArray<Jobs.NodeInfo>, DatabaseError>
    /** The node currently leading the maintenance work, if any. */
    readonly leader: Effect.Effect<string | null, DatabaseError>
    /**
     * The unfinished jobs aimed at a resource (scheduled, available, retryable or executing),
     * in the order they are due.
     */
    readonly resourceJobs: (
      resourceType: string,
      resourceId: string,
    ) => Effect.Effect<ReadonlyArray<JobRecord>, DatabaseError>
    /**
     * Cancels, in one statement, every job aimed at the resource that is still waiting, and
     * answers them. A job already executing is left to finish: cancel it by id to interrupt it.
     */
    readonly cancelForResource: (
      resourceType: string,
      resourceId: string,
    ) => Effect.Effect<ReadonlyArray<JobRecord>, DatabaseError>
    /** Moves every job aimed at the resource that is still waiting to a new time, and answers them. */
    readonly rescheduleForResource: (
      resourceType: string,
      resourceId: string,
      to: Jobs.RescheduleTo,
    ) => Effect.Effect<ReadonlyArray<JobRecord>, InvalidJobOptions | DatabaseError>
    /**
     * Every stored recurring task, by id, whichever nodes register it (`Tasks.stats` shows only
     * this node's); hidden ones only with `includeHidden`.
     */
    readonly taskStats: (options?: {
      readonly includeHidden?: boolean | undefined
    }) => Effect.Effect<ReadonlyArray<Tasks.TaskStats>, DatabaseError>
    /** A task's runs, newest first (at most `limit`, default 50). */
    readonly taskHistory: (
      id: string,
      options?: { readonly limit?: number | undefined },
    ) => Effect.Effect<ReadonlyArray<Tasks.TaskRun>, DatabaseError>
  }
>() {}

/**
 * Builds the client: checks the schema (or migrates it with `migrate: true`) and provides
 * `JobsClient` and the `Schedules` of cron jobs. Needs only a `SqlClient`.
 */
export const make = (
  options: Options = {},
): Effect.Effect<
  { readonly client: JobsClient["Type"]; readonly schedules: Schedules.Schedules["Type"] },
  SchemaNotReady | InvalidJobOptions | DatabaseError,
  SqlClient
> =>
  Effect.gen(function* () {
    const schema = options.schema ?? "effect_jobs"
    yield* checkSchemaName(schema)
    const maxPayloadBytes = options.maxPayloadBytes ?? 1024 * 1024
    yield* checkWholeNumber("maxPayloadBytes", maxPayloadBytes, 1, maxInt)
    const nodeTimeout = Duration.toMillis(options.nodeTimeout ?? "30 seconds")
    if (!(nodeTimeout > 0 && Number.isFinite(nodeTimeout))) {
      return yield* invalid("nodeTimeout must be a finite duration longer than zero")
    }
    const sql = yield* SqlClient
    // The app's SqlClient may rename columns or parse JSON for its own rows; ours are read as stored.
    const plainSql = sql.withoutTransforms()
    if (options.migrate === true) {
      yield* migrate(sql, schema).pipe(
        Effect.catchTags({
          SqlError: (error) => Effect.fail(toDatabaseError("migrating the jobs schema")(error)),
          // One error for a schema the client cannot use, whether it was asked to migrate or not.
          SchemaTooNew: ({ found, supported }) =>
            Effect.fail(new SchemaNotReady({ schema, found, expected: supported })),
        }),
      )
    }
    yield* checkSchemaLevel(plainSql, schema)
    const prepared = yield* Effect.serviceOption(PreparedStatements)
    const store = Store.make(plainSql, schema, Option.getOrUndefined(prepared), true)
    const client = Api.make({
      store,
      maxPayloadBytes,
      nodeTimeoutMillis: nodeTimeout,
      local: Api.remote,
    })
    const cron = CronEnqueuer.make({ store, maxPayloadBytes, onInserted: () => {} })
    return { client, schedules: Api.schedules(cron) }
  }).pipe(Effect.withSpan("JobsClient.make", { captureStackTrace: false }))

/**
 * The client as a layer: `JobsClient` and `Schedules`, over the app's `SqlClient` (from
 * `JobsPg.layer`, `JobsPglite.layer` or the app's own `PgClient`).
 */
export const layer = (
  options: Options = {},
): Layer.Layer<
  JobsClient | Schedules.Schedules,
  SchemaNotReady | InvalidJobOptions | DatabaseError,
  SqlClient
> =>
  Layer.effectContext(
    Effect.map(make(options), ({ client, schedules }) =>
      Context.make(JobsClient, client).pipe(Context.add(Schedules.Schedules, schedules)),
    ),
  )
