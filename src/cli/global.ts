/**
 * The options every command takes (where the database is, which schema, how to print), and
 * the layers they open: a `SqlClient` on PostgreSQL or PGlite, and over it the producer-only
 * `JobsClient`, which joins no cluster (no heartbeat, no queue, no leader election).
 */
import { existsSync } from "node:fs"
import * as NodePath from "node:path"
import { Options } from "@effect/cli"
import { type SqlClient, SqlClient as SqlClientTag } from "@effect/sql/SqlClient"
import type { SqlError } from "@effect/sql/SqlError"
import { Config, Effect, Layer, Option } from "effect"
import { checkSchemaName } from "../internal/api/validation.js"
import * as Store from "../internal/store/store.js"
import { InvalidCommand } from "../JobError.js"
import * as JobsClient from "../JobsClient.js"
import * as JobsPg from "../JobsPg.js"
import * as JobsPglite from "../JobsPglite.js"
import type { Listener } from "../Listener.js"
import type * as Schedules from "../Schedules.js"

export const options = {
  url: Options.text("url").pipe(
    Options.withDescription(
      "PostgreSQL connection string. Defaults to the DATABASE_URL environment variable.",
    ),
    Options.withFallbackConfig(Config.string("DATABASE_URL")),
    Options.optional,
  ),
  pglite: Options.directory("pglite").pipe(
    Options.withDescription(
      "A PGlite data directory to use instead of PostgreSQL (refused while a running app holds it).",
    ),
    Options.optional,
  ),
  schema: Options.text("schema").pipe(
    Options.withDescription("The PostgreSQL schema of the jobs tables."),
    Options.withDefault("effect_jobs"),
  ),
  json: Options.boolean("json").pipe(Options.withDescription("Print JSON instead of tables.")),
}

export interface Global {
  readonly url: Option.Option<string>
  readonly pglite: Option.Option<string>
  readonly schema: string
  readonly json: boolean
}

const invalid = (message: string) => new InvalidCommand({ message })

/** The connection string without its password, for messages. */
const redact = (url: URL) => {
  const shown = new URL(url.href)
  if (shown.password !== "") shown.password = "***"
  return shown.href
}

const pgLayer = (raw: string, maxConnections: number) =>
  Effect.gen(function* () {
    const url = yield* Effect.try({
      try: () => new URL(raw),
      catch: () => invalid(`--url must be a postgres:// connection string, got ${JSON.stringify(raw)}`),
    })
    if (url.protocol !== "postgres:" && url.protocol !== "postgresql:") {
      return yield* invalid(
        `--url must be a postgres:// connection string, got ${JSON.stringify(redact(url))}`,
      )
    }
    return JobsPg.layer({
      url: raw,
      maxConnections,
      connectTimeout: "5 seconds",
      preparedStatements: maxConnections > 2,
      applicationName: "effect-jobs cli",
    }).pipe(
      Layer.catchAll((error: SqlError) => {
        const cause = error.cause as { readonly message?: unknown } | undefined
        const reason =
          typeof cause?.message === "string" && cause.message !== "" ? cause.message : error.message
        return Layer.fail(invalid(`cannot connect to PostgreSQL at ${redact(url)}: ${reason}`))
      }),
    )
  })

/**
 * The database the options name. `create` lets `migrate` and `work` start a PGlite directory that
 * does not exist yet; every other command refuses one, rather than leave an empty database
 * behind. A worker gets a pool of its own size; the other commands need two connections.
 */
export const sqlLayer = (
  global: Global,
  create = false,
  maxConnections = 2,
): Layer.Layer<SqlClient | Listener, unknown> =>
  Layer.unwrapEffect(
    Effect.gen(function* () {
      yield* checkSchemaName(global.schema)
      if (Option.isSome(global.pglite)) {
        if (Option.isSome(global.url) && process.env.DATABASE_URL !== global.url.value) {
          return yield* invalid("give either --url or --pglite, not both")
        }
        const dataDir = global.pglite.value
        if (!create && !existsSync(NodePath.join(dataDir, "PG_VERSION"))) {
          return yield* invalid(
            `no PGlite database in ${dataDir}: run \`effect-jobs migrate --pglite ${dataDir}\` first`,
          )
        }
        return JobsPglite.layer({ dataDir }) as Layer.Layer<SqlClient | Listener, unknown>
      }
      if (Option.isNone(global.url)) {
        return yield* invalid("no database: give --url (or set DATABASE_URL) or --pglite DIR")
      }
      return (yield* pgLayer(global.url.value, maxConnections)) as Layer.Layer<SqlClient | Listener, unknown>
    }),
  )

/** The producer-only client over the options' database; the schema must be at this version's level. */
export const clientLayer = (
  global: Global,
): Layer.Layer<JobsClient.JobsClient | Schedules.Schedules | SqlClient | Listener, unknown> =>
  Layer.provideMerge(JobsClient.layer({ schema: global.schema }), sqlLayer(global))

/** The store over the options' schema, for the operator's reads that the client does not serve. */
export const store = (schema: string) =>
  Effect.map(SqlClientTag, (sql) => Store.make(sql.withoutTransforms(), schema))
