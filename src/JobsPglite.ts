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
import { Config, Context, Effect, Layer, Option } from "effect"
import * as RuntimeConfig from "./internal/config.js"
import * as PgliteClient from "./internal/engines/pgliteClient.js"
import type { DataDirLocked, EngineNotInstalled, InvalidConfig } from "./JobError.js"
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

/** The environment variable `layerConfig()` reads the data directory from; unset means in memory. */
export const envDataDir = "EFFECT_JOBS_PGLITE_DIR"

/**
 * `layer`, reading its options from `Config`: given none, the data directory from the
 * `EFFECT_JOBS_PGLITE_DIR` environment variable (in memory when it is not set); or any options,
 * e.g. `{ dataDir: Config.string("JOBS_DATA_DIR") }`. A config that cannot be read fails with
 * `InvalidConfig`, naming the option.
 */
export const layerConfig = (
  config: Config.Config.Wrap<Options> = Config.map(Config.option(Config.string(envDataDir)), (dataDir) =>
    Option.isSome(dataDir) ? { dataDir: dataDir.value } : {},
  ),
): Layer.Layer<
  SqlClient | Listener.Listener,
  SqlError | DataDirLocked | EngineNotInstalled | InvalidConfig
> =>
  Layer.unwrapEffect(Effect.map(Effect.mapError(Config.unwrap(config), RuntimeConfig.fromConfigError), layer))
