/**
 * Emptying a schema for the testing layer: every table but the migrations, identities
 * restarted, so each test starts from an empty database without migrating again; or dropping
 * a schema a layer made for itself.
 */
import type { SqlClient } from "@effect/sql/SqlClient"
import type { SqlError } from "@effect/sql/SqlError"
import { Effect } from "effect"

export const reset = (sql: SqlClient, schema: string): Effect.Effect<void, SqlError> =>
  Effect.gen(function* () {
    const tables = yield* sql.unsafe<{ name: string }>(
      `SELECT tablename AS name FROM pg_tables WHERE schemaname = $1 AND tablename <> 'migrations' ORDER BY tablename`,
      [schema],
    )
    if (tables.length === 0) return
    yield* sql.unsafe(
      `TRUNCATE ${tables.map((table) => `${schema}."${table.name}"`).join(", ")} RESTART IDENTITY CASCADE`,
    )
  })

/** Drops a schema and everything in it: a testing layer's own, when the layer closes. */
export const drop = (sql: SqlClient, schema: string): Effect.Effect<void, SqlError> =>
  Effect.asVoid(sql.unsafe(`DROP SCHEMA IF EXISTS ${schema} CASCADE`))
