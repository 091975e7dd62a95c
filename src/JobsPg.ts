/**
 * The PostgreSQL engine, through `@effect/sql-pg`.
 */

import type { SqlClient } from "@effect/sql/SqlClient"
import type { SqlError } from "@effect/sql/SqlError"
import { PgClient } from "@effect/sql-pg"
import { type Config, type ConfigError, Effect, Layer, Redacted } from "effect"
import * as Listener from "./Listener.js"

export interface Options extends Omit<PgClient.PgClientConfig, "url"> {
  /** A connection string such as `postgres://user@127.0.0.1:5432/app`; a plain string is accepted. */
  readonly url?: string | Redacted.Redacted
}

/** LISTEN for an app that already provides its own `PgClient`. */
export const layerListener: Layer.Layer<Listener.Listener, never, PgClient.PgClient> = Layer.effect(
  Listener.Listener,
  Effect.map(PgClient.PgClient, (client) => Listener.make("postgres", (channel) => client.listen(channel))),
)

/** A `PgClient` (which is also the `SqlClient` the jobs use) and LISTEN, from a connection config. */
export const layer = (
  options: Options,
): Layer.Layer<PgClient.PgClient | SqlClient | Listener.Listener, SqlError> =>
  Layer.provideMerge(
    layerListener,
    PgClient.layer({
      ...options,
      url: typeof options.url === "string" ? Redacted.make(options.url) : options.url,
    }),
  )

/** `layer`, reading its config, e.g. `Config.redacted("DATABASE_URL")` for `url`. */
export const layerConfig = (
  config: Config.Config.Wrap<PgClient.PgClientConfig>,
): Layer.Layer<PgClient.PgClient | SqlClient | Listener.Listener, SqlError | ConfigError.ConfigError> =>
  Layer.provideMerge(layerListener, PgClient.layerConfig(config))
