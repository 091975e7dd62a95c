/**
 * The engines every storage test runs on: embedded PGlite always, and PostgreSQL at
 * DATABASE_URL (default 127.0.0.1:5432/test) when it answers. With CI=true an unreachable
 * PostgreSQL fails the run instead of skipping it.
 */
import { createConnection } from "node:net"
import type { SqlClient } from "@effect/sql/SqlClient"
import type { SqlError } from "@effect/sql/SqlError"
import { Effect, Layer } from "effect"
import type { DataDirLocked, EngineNotInstalled } from "../../src/JobError.js"
import * as JobsPg from "../../src/JobsPg.js"
import * as JobsPglite from "../../src/JobsPglite.js"
import type { Listener } from "../../src/Listener.js"

export const postgresUrl = process.env.DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/test"

const reachable = (url: string) =>
  new Promise<boolean>((resolve) => {
    const { hostname, port } = new URL(url)
    const socket = createConnection({ host: hostname, port: Number(port || 5432) })
    socket.setTimeout(2000)
    socket.once("connect", () => {
      socket.destroy()
      resolve(true)
    })
    socket.once("error", () => resolve(false))
    socket.once("timeout", () => {
      socket.destroy()
      resolve(false)
    })
  })

export const postgresAvailable = await reachable(postgresUrl)
if (!postgresAvailable && process.env.CI === "true") {
  throw new Error(
    `CI=true but PostgreSQL at ${postgresUrl} does not answer: the PostgreSQL tests must run in CI`,
  )
}

export interface Engine {
  readonly name: "pglite" | "postgres"
  readonly layer: Layer.Layer<SqlClient | Listener, SqlError | DataDirLocked | EngineNotInstalled>
}

export const pglite: Engine = {
  name: "pglite",
  get layer() {
    return JobsPglite.layer()
  },
}
export const postgres: Engine = {
  name: "postgres",
  layer: JobsPg.layer({ url: postgresUrl, maxConnections: 10 }).pipe(Layer.orDie),
}

/** PGlite always; PostgreSQL when reachable (and always under CI). */
export const engines: ReadonlyArray<Engine> = process.env.ONLY_PG
  ? [postgres]
  : postgresAvailable
    ? [pglite, postgres]
    : [pglite]

let counter = 0
/** A schema of its own for each test, so tests never see each other's jobs. */
export const freshSchema = () =>
  `t_${process.pid}_${Date.now().toString(36)}_${(counter++).toString(36)}`.toLowerCase()

export const dropSchema = (sql: SqlClient, schema: string) =>
  Effect.ignore(sql.unsafe(`DROP SCHEMA IF EXISTS ${schema} CASCADE`))
