/**
 * A store over a fresh, migrated schema, dropped when the test's scope closes; and reads of
 * the rows as they are stored, for the conformance suite to assert on.
 */
import { SqlClient } from "@effect/sql/SqlClient"
import { Effect, Option } from "effect"
import { migrate } from "../../src/internal/store/migrations.js"
import { PreparedStatements } from "../../src/internal/store/prepared.js"
import * as Store from "../../src/internal/store/store.js"
import { dropSchema, freshSchema } from "../support/engines.js"

export const withStore = Effect.gen(function* () {
  const sql = yield* SqlClient
  const schema = freshSchema()
  yield* Effect.addFinalizer(() => dropSchema(sql, schema))
  yield* migrate(sql, schema)
  // On PostgreSQL the engine's layer prepares the per-job statements, as the runtime does.
  const prepared = Option.getOrUndefined(yield* Effect.serviceOption(PreparedStatements))
  const store = Store.make(sql, schema, prepared)
  /** The rows of one of the schema's tables, as stored. */
  const rows = (table: string, where = "true", params: ReadonlyArray<unknown> = []) =>
    sql.unsafe<any>(`SELECT * FROM ${schema}.${table} WHERE ${where}`, params)
  return { sql, schema, prepared, store, rows }
})
