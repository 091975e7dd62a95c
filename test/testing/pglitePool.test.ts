/**
 * `Testing.pglite()` hands a database that an earlier layer of the process closed to the next
 * one (vitest's `isolate: false` runs a worker's files in one process), put back as the image
 * left it; one it cannot put back is closed instead.
 *
 * Whether a database is the same one shows in its transaction ids: a database opened from the
 * image always starts at the image's, a reused one goes on from where it was.
 */

import { spawn } from "node:child_process"
import { SqlClient } from "@effect/sql/SqlClient"
import { describe, expect, it } from "@effect/vitest"
import { Deferred, Effect, Fiber, Layer, Schema } from "effect"
import * as Job from "../../src/Job.js"
import * as Jobs from "../../src/Jobs.js"
import * as Testing from "../../src/Testing.js"
import { bundled } from "../support/bundles.js"

const Ping = Job.make("ping", { args: Schema.Struct({ n: Schema.Number }) })
const ping = Ping.handler(() => Effect.void)

/** Runs `use` against a `Testing.pglite()` database, closed (given back) when it returns. */
const withDatabase = <A, E>(use: (sql: SqlClient) => Effect.Effect<A, E>) =>
  Effect.scoped(
    Effect.flatMap(Layer.build(Testing.pglite()), (context) => use(context.unsafeMap.get(SqlClient.key))),
  )

const txid = (sql: SqlClient) =>
  Effect.map(sql.unsafe<{ id: string }>("SELECT txid_current()::text AS id"), (rows) => Number(rows[0]!.id))

const column = <R, K extends keyof R>(rows: ReadonlyArray<R>, name: K) => rows.map((row) => row[name])

const publicSchema = (sql: SqlClient) =>
  sql.unsafe(
    "SELECT nspowner::regrole::text AS owner, nspacl::text AS acl FROM pg_namespace WHERE nspname = 'public'",
  )

describe("Testing.pglite() between layers of one process", () => {
  it.effect("the next layer gets the same database back as the image left it", () =>
    Effect.gen(function* () {
      const fresh = yield* withDatabase((sql) =>
        Effect.gen(function* () {
          const before = { txid: yield* txid(sql), public: yield* publicSchema(sql) }
          yield* sql.unsafe(`
            CREATE TABLE public.notes (body text);
            INSERT INTO public.notes VALUES ('left behind');
            CREATE SCHEMA app;
            CREATE TABLE app.users (name text);
            CREATE ROLE tester;
            GRANT USAGE ON SCHEMA app TO tester;
            SET TimeZone = 'Asia/Tokyo';
            CREATE TEMP TABLE scratch (x int);
          `)
          // A job left in the jobs schema, inserted as a test would.
          yield* Effect.flatMap(Jobs.Jobs, (jobs) => jobs.insert(Ping, { n: 1 })).pipe(
            Effect.provide(Testing.layer({ handlers: [ping] })),
            Effect.provideService(SqlClient, sql),
          )
          return before
        }),
      )

      const after = yield* withDatabase((sql) =>
        Effect.all({
          txid: txid(sql),
          public: publicSchema(sql),
          publicTables: sql.unsafe("SELECT tablename FROM pg_tables WHERE schemaname = 'public'"),
          schemas: sql.unsafe<{ nspname: string }>(
            "SELECT nspname FROM pg_namespace WHERE nspname NOT LIKE 'pg\\_%' ORDER BY nspname",
          ),
          roles: sql.unsafe("SELECT rolname FROM pg_roles WHERE rolname = 'tester'"),
          timeZone: sql.unsafe<{ zone: string }>("SELECT current_setting('TimeZone') AS zone"),
          scratch: sql.unsafe<{ scratch: string | null }>("SELECT to_regclass('scratch') AS scratch"),
          jobs: sql.unsafe<{ count: number }>(
            `SELECT count(*)::int AS count FROM ${Testing.defaultSchema}.jobs`,
          ),
        }),
      )

      expect(after.txid).toBeGreaterThan(fresh.txid)
      expect(after.public).toEqual(fresh.public)
      expect(after.publicTables).toEqual([])
      expect(column(after.schemas, "nspname")).toEqual([
        Testing.defaultSchema,
        "information_schema",
        "public",
      ])
      expect(after.roles).toEqual([])
      expect(column(after.timeZone, "zone")).not.toEqual(["Asia/Tokyo"])
      expect(column(after.scratch, "scratch")).toEqual([null])
      expect(column(after.jobs, "count")).toEqual([0])

      // Ids start again at 1, as in a database opened from the image.
      const job = yield* Effect.flatMap(Jobs.Jobs, (jobs) => jobs.insert(Ping, { n: 2 })).pipe(
        Effect.provide(Testing.layer({ handlers: [ping] })),
        Effect.provide(Testing.pglite()),
      )
      expect(job.id).toBe(1)
    }),
  )

  it.effect("a database left inside a transaction is closed, and the next layer opens the image", () =>
    Effect.gen(function* () {
      yield* withDatabase((sql) =>
        Effect.zipRight(sql.unsafe("BEGIN"), sql.unsafe("CREATE TABLE public.half_done (x int)")),
      )
      const next = yield* withDatabase((sql) =>
        Effect.all({
          halfDone: sql.unsafe<{ t: string | null }>("SELECT to_regclass('public.half_done') AS t"),
          inTransaction: sql.unsafe<{ outside: boolean }>("SELECT now() = statement_timestamp() AS outside"),
        }),
      )
      expect(column(next.halfDone, "t")).toEqual([null])
      expect(column(next.inTransaction, "outside")).toEqual([true])
    }),
  )

  it.effect("a database a fiber still holds in a transaction is given up on after 10 s, not waited for", () =>
    Effect.gen(function* () {
      const holder = yield* withDatabase((sql) =>
        Effect.gen(function* () {
          const started = yield* Deferred.make<void>()
          const fiber = yield* sql
            .withTransaction(
              Effect.zipRight(
                sql.unsafe("CREATE TABLE public.held (x int)"),
                Effect.zipRight(Deferred.succeed(started, undefined), Effect.never),
              ),
            )
            .pipe(Effect.forkDaemon)
          yield* Deferred.await(started)
          return fiber
        }),
      )
      const next = yield* withDatabase((sql) =>
        sql.unsafe<{ t: string | null }>("SELECT to_regclass('public.held') AS t"),
      )
      yield* Fiber.interrupt(holder)
      expect(column(next, "t")).toEqual([null])
    }),
  )

  it.effect("a database whose jobs schema or settings a test changed is not handed on", () =>
    Effect.gen(function* () {
      const schema = Testing.defaultSchema
      const changes = [
        {
          change: `CREATE TABLE ${schema}.leftover (x int)`,
          check: `SELECT to_regclass('${schema}.leftover') AS v`,
        },
        {
          change: `ALTER TABLE ${schema}.jobs ADD COLUMN extra int`,
          check: `SELECT column_name AS v FROM information_schema.columns WHERE table_schema = '${schema}' AND column_name = 'extra'`,
        },
        {
          change: `CREATE FUNCTION ${schema}.leftover() RETURNS int LANGUAGE sql AS 'SELECT 1'`,
          check: `SELECT to_regproc('${schema}.leftover') AS v`,
        },
        {
          change: "ALTER ROLE postgres SET work_mem = '8MB'",
          check: "SELECT setconfig AS v FROM pg_db_role_setting",
        },
      ]
      for (const { change, check } of changes) {
        yield* withDatabase((sql) => sql.unsafe(change))
        const left = yield* withDatabase((sql) => sql.unsafe<{ v: unknown }>(check))
        expect({ change, left: left.filter((row) => row.v !== null) }).toEqual({ change, left: [] })
      }
    }),
  )

  it.effect("layers open at the same time get databases of their own", () =>
    Effect.gen(function* () {
      const seen = yield* withDatabase((first) =>
        Effect.zipRight(
          first.unsafe("CREATE TABLE public.mine (x int)"),
          withDatabase((second) =>
            second.unsafe<{ t: string | null }>("SELECT to_regclass('public.mine') AS t"),
          ),
        ),
      )
      expect(column(seen, "t")).toEqual([null])
    }),
  )

  it.effect("a process whose database sits idle in the pool exits soon after on its own", () =>
    Effect.gen(function* () {
      const exited = yield* Effect.async<{ code: number | null; output: string; afterClose: number }>(
        (resume) => {
          let closedAt: number | undefined
          let output = ""
          // Killed after a minute: a process alive then is held open for good.
          const child = spawn(process.execPath, [bundled("closePglite")], { timeout: 60_000 })
          child.stdout.on("data", (chunk) => {
            output += chunk
            if (output.includes("closed")) closedAt ??= performance.now()
          })
          child.stderr.on("data", (chunk) => {
            output += chunk
          })
          child.on("exit", (code) =>
            resume(
              Effect.succeed({ code, output, afterClose: performance.now() - (closedAt ?? Number.NaN) }),
            ),
          )
        },
      )
      expect(exited.output).toBe("closed\n")
      expect(exited.code).toBe(0)
      // The pool lets an idle database go after a second; held, PGlite keeps the process ten.
      expect(exited.afterClose).toBeLessThan(6_000)
    }),
  )
})
