import { Config, Layer } from "effect"
import { Jobs, JobsPg, JobsPglite } from "effect-jobs"

// PostgreSQL: a PgClient (it is also the app's SqlClient) plus a LISTEN connection.
export const OnPostgres = JobsPg.layer({
  url: "postgres://app@127.0.0.1:5432/app",
  maxConnections: 20, // any other PgClient option
})

// The same, reading the connection string from the environment.
export const OnPostgresFromEnv = JobsPg.layerConfig({ url: Config.redacted("DATABASE_URL") })

// Embedded PGlite: kept in a directory, or in memory when dataDir is left out.
export const OnPglite = JobsPglite.layer({ dataDir: "./data/jobs" })
export const InMemory = JobsPglite.layer()

// Layer.provideMerge keeps the SqlClient available to the app, for its own queries and
// transactions; Layer.provide would hide it.
export const AppLive = Jobs.layer({ queues: { default: 10, mail: 2 } }).pipe(Layer.provideMerge(OnPostgres))
