/**
 * effect-jobs, compiled from this repository's source into dist/ (bench:compare builds it
 * first), on PostgreSQL (`JobsPg.layer`) or on in-memory PGlite (`JobsPglite.layer`). The
 * worker's queue starts paused and `start` resumes it on this process, so nothing is claimed
 * before the clock starts.
 */
import { SqlClient } from "@effect/sql/SqlClient"
import { Effect, Layer, Logger, LogLevel, ManagedRuntime, Schema } from "effect"
import type * as Library from "../../../dist/index.js"
import { effectJobsVersion, type OnJob, pgUrl, queueName, rootPackageVersion } from "../common.js"
import { deadTuples, query } from "../control.js"
import type { Counts, OpenOptions, System, SystemModule } from "./system.js"

// The compiled library, as an app runs it (bench:compare builds it first).
const dist = new URL("../../../dist/index.js", import.meta.url).href
const { Job, Jobs, JobsPg, JobsPglite } = (await import(dist)) as typeof Library

const Noop = Job.make("noop", {
  args: Schema.Struct({ n: Schema.Number, t: Schema.Number }),
  queue: queueName,
})

let onJob: OnJob = () => {}
const noop = Noop.handler(({ args }) => Effect.sync(() => onJob(args)))

const schema = "effect_jobs"

const countsFrom = (
  rows: ReadonlyArray<{ state: string; count: number }>,
  keepCompleted: boolean,
): Counts => {
  const of = (states: ReadonlyArray<string>) =>
    rows.filter((r) => states.includes(r.state)).reduce((sum, r) => sum + Number(r.count), 0)
  return {
    pending: of(["scheduled", "available", "executing", "retryable"]),
    completed: keepCompleted ? of(["completed"]) : null,
    failed: of(["discarded", "cancelled"]),
  }
}
const countsSql = `SELECT state, count(*)::int AS count FROM ${schema}.jobs GROUP BY state`

/** `keepCompleted: false` is `prune: { completed: 0 }`: a completion deletes its job, as graphile-worker's does. */
const make =
  (engine: "postgres" | "pglite", keepCompleted = true) =>
  (options: OpenOptions): System => {
    const pool = options.maxPool ?? 10
    const prune = keepCompleted ? {} : { prune: { completed: 0 } }
    const queues: Record<string, Library.Jobs.QueueConfig> =
      options.role === "worker" ? { [queueName]: { concurrency: options.concurrency, paused: true } } : {}
    const settings = {
      engine:
        engine === "postgres"
          ? `JobsPg.layer({ url, maxConnections: ${pool} })`
          : "JobsPglite.layer() (in memory)",
      queues: options.role === "worker" ? { [queueName]: { concurrency: options.concurrency } } : {},
      ...prune,
      other: `every other Jobs.layer option at its default (${keepCompleted ? "pruning, " : ""}LISTEN wake-ups, poll interval 1 s)`,
    }
    const engineLayer =
      engine === "postgres" ? JobsPg.layer({ url: pgUrl, maxConnections: pool }) : JobsPglite.layer()
    const runtime = ManagedRuntime.make(
      Jobs.layer({ handlers: [noop], queues, ...prune }).pipe(
        Layer.provideMerge(engineLayer),
        // Warnings and errors only, as for every system.
        Layer.provide(Logger.minimumLogLevel(LogLevel.Warning)),
      ),
    )
    const run = <A, E>(effect: Effect.Effect<A, E, Library.Jobs.Jobs | SqlClient>): Promise<A> =>
      runtime.runPromise(effect)
    const sqlRows = (text: string) =>
      run(Effect.flatMap(SqlClient, (sql) => sql.unsafe<{ state: string; count: number }>(text)))

    return {
      settings,
      open: () => run(Effect.void),
      insertMany: (jobs) =>
        run(Effect.flatMap(Jobs.Jobs, (j) => j.insertMany(Noop, jobs))).then(() => undefined),
      insertOne: (job) => run(Effect.flatMap(Jobs.Jobs, (j) => j.insert(Noop, job))).then(() => undefined),
      start: (handle) => {
        onJob = handle
        return run(Effect.flatMap(Jobs.Jobs, (j) => j.resumeQueue(queueName, { localOnly: true })))
      },
      counts: async () =>
        countsFrom(
          engine === "postgres"
            ? await query<{ state: string; count: number }>(countsSql)
            : await sqlRows(countsSql),
          keepCompleted,
        ),
      close: async () => {
        if (engine === "pglite") {
          // The database lives in this process: read its statistics before it goes.
          const rows = await run(
            Effect.flatMap(SqlClient, (sql) =>
              sql.unsafe<{ table: string; n_live_tup: number; n_dead_tup: number }>(
                `SELECT relname AS "table", n_live_tup::int, n_dead_tup::int FROM pg_stat_user_tables
                  WHERE schemaname = '${schema}' ORDER BY n_dead_tup DESC`,
              ),
            ),
          )
          await runtime.dispose()
          return {
            n_dead_tup: rows.reduce((sum, r) => sum + Number(r.n_dead_tup), 0),
            jobs_table_n_dead_tup: rows
              .filter((r) => r.table === "jobs")
              .reduce((s, r) => s + Number(r.n_dead_tup), 0),
            tables: rows.filter((r) => Number(r.n_dead_tup) > 0 || Number(r.n_live_tup) > 0),
          }
        }
        await runtime.dispose()
        return deadTuples(schema, "jobs")
      },
    }
  }

const versions = async () => ({
  "effect-jobs": `${effectJobsVersion()} (this repository's src, compiled)`,
  effect: rootPackageVersion("effect"),
  "@effect/sql-pg": rootPackageVersion("@effect/sql-pg"),
  "@electric-sql/pglite": rootPackageVersion("@electric-sql/pglite"),
})

export const postgres: SystemModule = { make: make("postgres"), versions }
export const postgresDeleting: SystemModule = { make: make("postgres", false), versions }
export const pglite: SystemModule = { make: make("pglite"), versions }
