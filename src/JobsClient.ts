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
import type { JobsClientService } from "./internal/api/service.js"
import { checkSchemaName, checkWholeNumber, invalid, maxInt } from "./internal/api/validation.js"
import * as CronEnqueuer from "./internal/maintenance/cronEnqueuer.js"
import { checkSchemaLevel, migrate } from "./internal/store/migrations.js"
import { PreparedStatements } from "./internal/store/prepared.js"
import { toDatabaseError } from "./internal/store/retryDatabase.js"
import * as Store from "./internal/store/store.js"
import { type DatabaseError, type InvalidJobOptions, SchemaNotReady } from "./JobError.js"
import * as Schedules from "./Schedules.js"

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

export type { JobsClientService }

export class JobsClient extends Context.Tag("effect-jobs/JobsClient")<JobsClient, JobsClientService>() {}

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
