/**
 * `migrate` brings the jobs schema to the library's level (or `--target`), for a deploy step
 * that migrates before the workers start; `--dry-run` prints the SQL instead. `migrate status`
 * shows which migrations the schema has.
 */
import { Command, Options } from "@effect/cli"
import { SqlClient } from "@effect/sql/SqlClient"
import { Console, Effect, Option } from "effect"
import {
  appliedMigrations,
  latestVersion,
  migrate,
  migrationScript,
  migrations,
} from "../internal/store/migrations.js"
import { toDatabaseError } from "../internal/store/retryDatabase.js"
import { InvalidCommand } from "../JobError.js"
import * as Global from "./global.js"
import * as Output from "./output.js"

const readApplied = (sql: SqlClient, schema: string) =>
  appliedMigrations(sql, schema).pipe(
    Effect.mapError(toDatabaseError("reading the jobs schema's migrations")),
  )

const checkTarget = (target: number, newest: number) => {
  if (!Number.isInteger(target) || target < 1 || target > latestVersion) {
    return Effect.fail(
      new InvalidCommand({
        message: `--target must be a migration of this version of effect-jobs, 1 to ${latestVersion}; got ${target}`,
      }),
    )
  }
  if (target < newest) {
    return Effect.fail(
      new InvalidCommand({
        message: `the schema is at migration ${newest}, past the target ${target}: migrations are never undone`,
      }),
    )
  }
  return Effect.void
}

const status = Command.make("status", { global: Global.options }, ({ global }) =>
  Effect.gen(function* () {
    const sql = yield* SqlClient
    const applied = yield* readApplied(sql, global.schema)
    const byVersion = new Map(applied.map((m) => [m.version, m]))
    const newest = Math.max(0, ...applied.map((m) => m.version))
    const rows = [
      ...migrations.map((m) => ({
        version: m.version,
        name: m.name,
        appliedAt: byVersion.get(m.version)?.appliedAt ?? null,
      })),
      // Migrations of a newer effect-jobs, which this one does not know.
      ...applied
        .filter((m) => m.version > latestVersion)
        .map((m) => ({ version: m.version, name: m.name, appliedAt: m.appliedAt })),
    ]
    const pending = migrations.filter((m) => !byVersion.has(m.version)).length
    const summary =
      newest > latestVersion
        ? `schema ${global.schema} is at migration ${newest}, newer than the ${latestVersion} this effect-jobs knows`
        : pending === 0
          ? `schema ${global.schema} is at migration ${newest}, this effect-jobs's level`
          : `schema ${global.schema} is at migration ${newest}; ${pending} of ${latestVersion} migrations pending`
    yield* Output.print(
      global.json,
      { schema: global.schema, level: newest, library: latestVersion, pending, migrations: rows },
      () =>
        `${Output.table(
          ["version", "name", "applied"],
          rows.map((row) => [
            String(row.version),
            row.name,
            row.appliedAt === null ? Output.yellow("pending") : Output.cell(row.appliedAt),
          ]),
        )}\n\n${summary}`,
    )
  }).pipe(Effect.provide(Global.sqlLayer(global))),
).pipe(Command.withDescription("Show the migrations the schema has and those it lacks."))

export const command = Command.make(
  "migrate",
  {
    global: Global.options,
    dryRun: Options.boolean("dry-run").pipe(
      Options.withDescription("Print the SQL that would run, and change nothing."),
    ),
    target: Options.integer("target").pipe(
      Options.withDescription("Migrate up to this migration only. Defaults to the newest."),
      Options.optional,
    ),
  },
  ({ global, dryRun, target }) =>
    Effect.gen(function* () {
      const sql = yield* SqlClient
      const applied = yield* readApplied(sql, global.schema)
      const versions = new Set(applied.map((m) => m.version))
      const newest = Math.max(0, ...versions)
      const goal = Option.getOrElse(target, () => latestVersion)
      if (newest > latestVersion) {
        return yield* new InvalidCommand({
          message: `schema ${global.schema} is at migration ${newest}, newer than the ${latestVersion} this version of effect-jobs knows: run the effect-jobs of the workers`,
        })
      }
      yield* checkTarget(goal, newest)
      if (dryRun) {
        const pending = migrations.filter((m) => !versions.has(m.version) && m.version <= goal)
        const script = migrationScript(global.schema, versions, goal)
        return yield* global.json
          ? Console.log(
              Output.json({ schema: global.schema, pending: pending.map((m) => m.version), sql: script }),
            )
          : Console.log(
              pending.length === 0
                ? `-- schema ${global.schema} is at migration ${newest}: nothing to run`
                : script,
            )
      }
      const ran = yield* migrate(sql, global.schema, goal).pipe(
        Effect.catchTag("SqlError", (error) =>
          Effect.fail(toDatabaseError("migrating the jobs schema")(error)),
        ),
      )
      const level = Math.max(newest, ...ran)
      yield* Output.print(global.json, { schema: global.schema, applied: ran, level }, () =>
        ran.length === 0
          ? `schema ${global.schema} is at migration ${level}: nothing to do`
          : `applied ${ran.length} migration${ran.length === 1 ? "" : "s"} (${ran.join(", ")}) to schema ${global.schema}; it is at migration ${level}`,
      )
    }).pipe(Effect.provide(Global.sqlLayer(global, !dryRun))),
).pipe(
  Command.withDescription("Bring the jobs schema up to this version of effect-jobs (or --target)."),
  Command.withSubcommands([status]),
)
