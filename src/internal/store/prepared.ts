/**
 * Named prepared statements for the statements every job goes through (insert, claim and
 * finish; an insert inside the app's transaction stays on the transaction's connection).
 * PostgreSQL then parses and plans each of them once per connection instead of on every call,
 * which at idle is most of a claim's time. `@effect/sql` sends every statement unnamed, so
 * `JobsPg.layer` owns the `pg` pool it hands to `PgClient` and provides this service from the
 * same pool; without it (PGlite, or an app's own `PgClient`) the store uses the `SqlClient`.
 */
import { createHash } from "node:crypto"
import { SqlError } from "@effect/sql/SqlError"
import { Context, Effect } from "effect"
import type * as Pg from "pg"

export class PreparedStatements extends Context.Tag("effect-jobs/PreparedStatements")<
  PreparedStatements,
  {
    /** Runs `text` as a statement prepared once per connection under a name derived from it. */
    readonly query: <A = any>(
      text: string,
      values: ReadonlyArray<unknown>,
    ) => Effect.Effect<ReadonlyArray<A>, SqlError>
  }
>() {}

export const fromPool = (pool: Pg.Pool): PreparedStatements["Type"] => {
  // The name follows the text, so schemas and versions never share one.
  const names = new Map<string, string>()
  const nameOf = (text: string) => {
    let name = names.get(text)
    if (name === undefined) {
      name = `effect_jobs_${createHash("sha1").update(text).digest("hex").slice(0, 24)}`
      names.set(text, name)
    }
    return name
  }
  return {
    query: (text, values) =>
      Effect.async((resume) => {
        pool.query({ name: nameOf(text), text, values: values as Array<unknown> }, (error, result) => {
          resume(
            error
              ? Effect.fail(new SqlError({ cause: error, message: "Failed to execute statement" }))
              : Effect.succeed(result.rows),
          )
        })
        // A statement under way is not cancelled: callers find out what it did by its lease.
      }),
  }
}
