/**
 * Opens `Testing.pglite()`, writes, closes the layer, and prints `closed`; then has nothing
 * left to do, so the process should exit on its own. The pool keeps the database for a later
 * layer, and an idle database must not hold the process open for long.
 *
 * Usage: node <bundle of this file>
 */
import { SqlClient } from "@effect/sql/SqlClient"
import { Effect } from "effect"
import * as Testing from "../../src/Testing.js"

const program = Effect.gen(function* () {
  const sql = yield* SqlClient
  yield* sql`CREATE TABLE written (x int)`
}).pipe(Effect.provide(Testing.pglite()))

Effect.runPromise(program).then(
  () => process.stdout.write("closed\n"),
  (error) => {
    process.stderr.write(`${error}\n`)
    process.exit(1)
  },
)
