/**
 * The embedded engine: PostgreSQL compiled to WebAssembly (PGlite), in this process, with no
 * server to run. The jobs use it through the same `SqlClient` and SQL as on PostgreSQL.
 *
 * PGlite is a single session: statements from different fibers take turns, and a transaction
 * has the database to itself until it ends.
 */
import * as Reactivity from "@effect/experimental/Reactivity"
import { SqlClient } from "@effect/sql/SqlClient"
import type { SqlError } from "@effect/sql/SqlError"
import { Config, type ConfigError, Context, Effect, Layer } from "effect"
import * as PgliteClient from "./internal/pgliteClient.js"
import type { DataDirLocked, EngineNotInstalled } from "./JobError.js"
import * as Listener from "./Listener.js"

export interface Options {
  /**
   * A directory to keep the database in. Defaults to in-memory: everything is gone when the
   * layer closes. One layer at a time may hold a directory: the layer locks it (a file
   * `effect-jobs.lock` in it) until it closes, and fails with `DataDirLocked` naming the
   * process that holds it. A lock left by a process that died is taken over.
   */
  readonly dataDir?: string | undefined
}

/**
 * A `SqlClient` and LISTEN on one PGlite database, opened when the layer is built and closed
 * with it. Do not start listening from inside a transaction: the stream fails, since LISTEN
 * would wait for that very transaction to end.
 *
 * `@electric-sql/pglite` is an optional peer dependency, loaded when the layer is built: without
 * it the layer fails with `EngineNotInstalled`.
 */
export const layer = (
  options: Options = {},
): Layer.Layer<SqlClient | Listener.Listener, SqlError | DataDirLocked | EngineNotInstalled> =>
  Layer.scopedContext(
    Effect.map(PgliteClient.make(options), ({ client, listen }) =>
      Context.make(SqlClient, client).pipe(Context.add(Listener.Listener, Listener.make("pglite", listen))),
    ),
  ).pipe(Layer.provide(Reactivity.layer))

/** `layer`, reading its options from config, e.g. `{ dataDir: Config.string("JOBS_DATA_DIR") }`. */
export const layerConfig = (
  config: Config.Config.Wrap<Options>,
): Layer.Layer<
  SqlClient | Listener.Listener,
  SqlError | DataDirLocked | EngineNotInstalled | ConfigError.ConfigError
> => Layer.unwrapEffect(Effect.map(Config.unwrap(config), layer))
