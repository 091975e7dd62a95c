/**
 * Holds a PGlite data directory open until killed, for the lock tests: opens it, writes a
 * row, prints `ready <pid>`, and waits.
 *
 * Usage: node --import tsx test/support/holdDataDir.ts <dataDir>
 */
import { SqlClient } from "@effect/sql/SqlClient"
import { Effect } from "effect"
import * as JobsPglite from "../../src/JobsPglite.js"

const dataDir = process.argv[2]!

const program = Effect.gen(function* () {
  const sql = yield* SqlClient
  yield* sql`CREATE TABLE IF NOT EXISTS written (pid integer NOT NULL)`
  yield* sql`INSERT INTO written (pid) VALUES (${process.pid})`
  yield* Effect.sync(() => process.stdout.write(`ready ${process.pid}\n`))
  return yield* Effect.never
}).pipe(Effect.provide(JobsPglite.layer({ dataDir })))

Effect.runPromise(program).catch((error) => {
  process.stderr.write(`${error}\n`)
  process.exit(1)
})
