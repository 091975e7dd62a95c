/**
 * The PostgreSQL engine, through `@effect/sql-pg`.
 */

import * as Reactivity from "@effect/experimental/Reactivity"
import type { SqlClient } from "@effect/sql/SqlClient"
import { SqlError } from "@effect/sql/SqlError"
import { PgClient } from "@effect/sql-pg"
import { Config, Context, Duration, Effect, Layer, Redacted } from "effect"
import Pg from "pg"
import * as RuntimeConfig from "./internal/config.js"
import { fromPool, PreparedStatements } from "./internal/store/prepared.js"
import type { InvalidConfig } from "./JobError.js"
import * as Listener from "./Listener.js"

export interface Options extends Omit<PgClient.PgClientConfig, "url"> {
  /** A connection string such as `postgres://user@127.0.0.1:5432/app`; a plain string is accepted. */
  readonly url?: string | Redacted.Redacted | undefined
  /**
   * Whether the statements every job goes through (insert, claim and finish) run as named
   * prepared statements, planned once per connection. An insert inside the app's transaction
   * runs on the transaction's connection either way. Defaults to true. Turn it off behind a
   * pooler that cannot keep prepared statements (PgBouncer in transaction mode before 1.21).
   */
  readonly preparedStatements?: boolean | undefined
}

/**
 * LISTEN for an app that already provides its own `PgClient`. LISTEN gets a connection of its
 * own from `PgClient.listen`, but the node's heartbeat goes through the app's pool: give the
 * pool room beyond what handlers hold at once, or a node whose handlers hold every connection
 * for longer than `nodeTimeout` looks dead and its jobs are run again elsewhere (`layer` has
 * no such limit: it opens a connection for liveness).
 */
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
 * One connection, apart from the pool, for the node's heartbeat and LISTEN pings: liveness
 * never waits for a slot that handlers may hold for as long as they like.
 */
const livenessClient = (options: Options) =>
  Effect.flatMap(
    openPool({
      ...options,
      maxConnections: 1,
      minConnections: undefined,
      applicationName: `${options.applicationName ?? "effect-jobs"} liveness`,
    }),
    (pool) => PgClient.fromPool({ acquire: Effect.succeed(pool), types: options.types }),
  ).pipe(Effect.provide(Reactivity.layer))

/** LISTEN and the liveness connection, for `layer`. */
const layerLiveness = (options: Options): Layer.Layer<Listener.Listener, SqlError, PgClient.PgClient> =>
  Layer.scoped(
    Listener.Listener,
    Effect.gen(function* () {
      const client = yield* PgClient.PgClient
      const liveness = yield* livenessClient(options)
      return Listener.make("postgres", (channel) => client.listen(channel), liveness)
    }),
  )

/**
 * A `PgClient` (which is also the `SqlClient` the jobs use) and LISTEN, from a connection config,
 * with the per-job statements prepared (see `Options.preparedStatements`). The node's heartbeat
 * and LISTEN each have a connection of their own besides the pool's `maxConnections`.
 */
export const layer = (
  options: Options,
): Layer.Layer<PgClient.PgClient | SqlClient | Listener.Listener, SqlError> =>
  Layer.provideMerge(
    layerLiveness(options),
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
