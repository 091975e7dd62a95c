/**
 * `effect-jobs` on PostgreSQL, in a schema of its own; and the refusals that need no
 * database: a bad URL, none at all.
 */
import { afterAll, describe, expect, it } from "@effect/vitest"
import Pg from "pg"
import { freshSchema, postgresAvailable, postgresUrl } from "../support/engines.js"
import { expectRefused, run, scenario } from "./scenario.js"

const schema = freshSchema()

describe.runIf(postgresAvailable)("effect-jobs on PostgreSQL", () => {
  afterAll(async () => {
    const client = new Pg.Client({ connectionString: postgresUrl })
    await client.connect()
    await client.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`)
    await client.end()
  })
  scenario({ engine: "postgres", database: ["--url", postgresUrl, "--schema", schema] })
})

describe("effect-jobs refusals before any database", () => {
  it("a URL that is no connection string, an unreachable server, or no database at all: one line, exit 1", async () => {
    const [notUrl, unreachable, none] = await Promise.all([
      run(["jobs", "list", "--url", "not a url"]),
      run(["doctor", "--url", "postgres://postgres:secret@127.0.0.1:1/app"]),
      run(["nodes"]),
    ])
    expectRefused(notUrl, '--url must be a postgres:// connection string, got "not a url"')
    // The password is not repeated in the message.
    expectRefused(unreachable, "cannot connect to PostgreSQL at postgres://postgres:***@127.0.0.1:1/app")
    expectRefused(none, "no database: give --url (or set DATABASE_URL) or --pglite DIR")
  }, 300_000)

  it("--help lists every command", async () => {
    const help = await run(["--help"])
    expect(help.code).toBe(0)
    for (const command of [
      "migrate",
      "doctor",
      "jobs",
      "queues",
      "schedules",
      "tasks",
      "nodes",
      "stats",
      "work",
      "dashboard",
    ]) {
      expect(help.stdout).toMatch(new RegExp(`^  - ${command}\\b`, "m"))
    }
    expect(help.stdout).not.toContain("\u001b[")
  }, 300_000)
})
