/**
 * Vacuuming the jobs table: every job leaves dead row versions, which nothing reclaims on
 * PGlite (no autovacuum) or on a server whose autovacuum is off. The leader vacuums there.
 */
import { SqlClient } from "@effect/sql/SqlClient"
import { describe, expect, layer } from "@effect/vitest"
import { Effect, Schema } from "effect"
import * as Maintenance from "../../src/internal/maintenance/rounds.js"
import * as Store from "../../src/internal/store/store.js"
import * as Job from "../../src/Job.js"
import { engines } from "../support/engines.js"
import { eventually, NotYet, startJobs } from "../support/jobs.js"

const Noop = Job.make("noop", { args: Schema.Struct({ n: Schema.Number }) })

/** The vacuum and analyze counts and dead rows of a schema's jobs table, as the server's statistics say. */
const tableStats = (schema: string) =>
  Effect.flatMap(SqlClient, (sql) =>
    sql.unsafe<{ vacuums: number; analyzes: number; dead: number }>(
      `SELECT (vacuum_count + autovacuum_count)::integer AS vacuums,
         (analyze_count + autoanalyze_count)::integer AS analyzes, n_dead_tup::integer AS dead
       FROM pg_stat_user_tables WHERE schemaname = $1 AND relname = 'jobs'`,
      [schema],
    ),
  ).pipe(Effect.map((rows) => rows[0] ?? { vacuums: 0, analyzes: 0, dead: 0 }))

for (const engine of engines) {
  describe(`vacuum on ${engine.name}`, () => {
    layer(engine.layer, { timeout: 60_000, excludeTestServices: true })((it) => {
      it.scoped("a vacuum round reclaims the dead rows finished jobs left and refreshes the statistics", () =>
        Effect.gen(function* () {
          const jobs = yield* startJobs({ handlers: [Noop.handler(() => Effect.void)], vacuum: false })
          yield* jobs.insertMany(
            Noop,
            Array.from({ length: 50 }, (_, n) => ({ n })),
          )
          yield* jobs.flush("default")
          const store = Store.make(yield* SqlClient, jobs.schema)
          expect(yield* Maintenance.vacuum(store, "always")).toBe(true)
          const after = yield* eventually(
            Effect.flatMap(tableStats(jobs.schema), (stats) =>
              stats.vacuums > 0 ? Effect.succeed(stats) : Effect.fail(new NotYet("no vacuum counted yet")),
            ),
          )
          expect(after.dead).toBe(0)
          expect(after.analyzes).toBeGreaterThan(0)
        }),
      )

      it.scoped("the leader vacuums by itself where nothing else does, and not where the server does", () =>
        Effect.gen(function* () {
          const jobs = yield* startJobs({
            handlers: [Noop.handler(() => Effect.void)],
            vacuum: { interval: "100 millis" },
          })
          yield* jobs.insert(Noop, { n: 1 })
          yield* jobs.flush("default")
          const serverVacuums = yield* Store.make(yield* SqlClient, jobs.schema).autovacuumRuns
          // PGlite never vacuums on its own; this PostgreSQL server does if its autovacuum runs.
          if (engine.name === "pglite") expect(serverVacuums).toBe(false)
          if (serverVacuums) {
            yield* Effect.sleep("500 millis")
            expect((yield* tableStats(jobs.schema)).vacuums).toBe(0)
          } else {
            yield* eventually(
              Effect.flatMap(tableStats(jobs.schema), (stats) =>
                stats.vacuums > 0 ? Effect.void : Effect.fail(new NotYet("not vacuumed yet")),
              ),
            )
          }
        }),
      )
    })
  })
}
