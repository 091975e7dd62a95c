/**
 * The PostgreSQL engine, through `@effect/sql-pg`.
 */

import type { SqlClient } from "@effect/sql/SqlClient"
import { SqlError } from "@effect/sql/SqlError"
import { PgClient } from "@effect/sql-pg"
import { Config, Context, Duration, Effect, Layer, Redacted } from "effect"
import Pg from "pg"
import * as RuntimeConfig from "./internal/config.js"
import { fromPool, PreparedStatements } from "./internal/prepared.js"
import type { InvalidConfig } from "./JobError.js"
import * as Listener from "./Listener.js"

export interface Options extends Omit<PgClient.PgClientConfig, "url"> {
  /** A connection string such as `postgres://user@127.0.0.1:5432/app`; a plain string is accepted. */
  readonly url?: string | Redacted.Redacted
  /**
   * Whether the statements every job goes through (insert, claim and finish) run as named
   * prepared statements, planned once per connection. An insert inside the app's transaction
   * runs on the transaction's connection either way. Defaults to true. Turn it off behind a
   * pooler that cannot keep prepared statements (PgBouncer in transaction mode before 1.21).
   */
  readonly preparedStatements?: boolean
}

/** LISTEN for an app that already provides its own `PgClient`. */
export const layerListener: Layer.Layer<Listener.Listener, never, PgClient.PgClient> = Layer.effect(
  Listener.Listener,
  Effect.map(PgClient.PgClient, (client) => Listener.make("postgres", (channel) => client.listen(channel))),
)

/**
 * The `pg` pool, opened and checked as `PgClient.layer` would, but owned here so that the
 * prepared statements share it.
 */
const openPool = (options: Options) =>
  Effect.acquireRelease(
    Effect.suspend(() => {
      const url = typeof options.url === "string" ? Redacted.make(options.url) : options.url
      const pool = new Pg.Pool({
        connectionString: url ? Redacted.value(url) : undefined,
        user: options.username,
        host: options.host,
        database: options.database,
        password: options.password ? Redacted.value(options.password) : undefined,
        ssl: options.ssl,
        port: options.port,
        ...(options.stream ? { stream: options.stream } : {}),
        connectionTimeoutMillis: options.connectTimeout
          ? Duration.toMillis(options.connectTimeout)
          : undefined,
        idleTimeoutMillis: options.idleTimeout ? Duration.toMillis(options.idleTimeout) : undefined,
        max: options.maxConnections,
        min: options.minConnections,
        maxLifetimeSeconds: options.connectionTTL ? Duration.toSeconds(options.connectionTTL) : undefined,
        application_name: options.applicationName ?? "effect-jobs",
        ...(options.types ? { types: options.types } : {}),
      })
      // Errors of idle connections surface on the next statement; unhandled, they would end the process.
      pool.on("error", () => {})
      return Effect.tryPromise({
        try: () => pool.query("SELECT 1"),
        catch: (cause) => new SqlError({ cause, message: "PgClient: Failed to connect" }),
      }).pipe(
        Effect.timeoutFail({
          duration: options.connectTimeout ?? Duration.seconds(5),
          onTimeout: () =>
            new SqlError({
              cause: new Error("Connection timed out"),
              message: "PgClient: Connection timed out",
            }),
        }),
        Effect.tapError(() => Effect.promise(() => pool.end())),
        Effect.as(pool),
      )
    }),
    (pool) => Effect.promise(() => pool.end()).pipe(Effect.interruptible, Effect.timeoutOption(1000)),
  )

/**
 * A `PgClient` (which is also the `SqlClient` the jobs use) and LISTEN, from a connection config,
 * with the per-job statements prepared (see `Options.preparedStatements`).
 */
export const layer = (
  options: Options,
): Layer.Layer<PgClient.PgClient | SqlClient | Listener.Listener, SqlError> =>
  Layer.provideMerge(
    layerListener,
    Layer.unwrapScoped(
      Effect.map(openPool(options), (pool) => {
        const client = PgClient.layerFromPool({
          acquire: Effect.succeed(pool),
          applicationName: options.applicationName,
          spanAttributes: options.spanAttributes,
          transformResultNames: options.transformResultNames,
          transformQueryNames: options.transformQueryNames,
          transformJson: options.transformJson,
          types: options.types,
        })
        return options.preparedStatements === false
          ? client
          : Layer.merge(client, Layer.succeedContext(Context.make(PreparedStatements, fromPool(pool))))
      }),
    ),
  ) as Layer.Layer<PgClient.PgClient | SqlClient | Listener.Listener, SqlError>

/** The environment variable `layerConfig()` reads the connection string from. */
export const envUrl = "DATABASE_URL"

/**
 * `layer`, reading its options from `Config`: given none, the connection string from the
 * `DATABASE_URL` environment variable; or any options, e.g. `{ url: Config.redacted("PG_URL"),
 * maxConnections: Config.integer("PG_POOL") }`. A config that cannot be read fails with
 * `InvalidConfig`, naming the option.
 */
export const layerConfig = (
  config: Config.Config.Wrap<Options> = { url: Config.redacted(envUrl) },
): Layer.Layer<PgClient.PgClient | SqlClient | Listener.Listener, SqlError | InvalidConfig> =>
  Layer.unwrapEffect(Effect.map(Effect.mapError(Config.unwrap(config), RuntimeConfig.fromConfigError), layer))
