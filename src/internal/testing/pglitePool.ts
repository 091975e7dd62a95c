/**
 * Open PGlite databases kept between the test files of one process. Under vitest with
 * `isolate: false` a worker runs file after file in one process; a database that one file's
 * `pglite()` closes is put back as the image left it and handed to the next file's, which so
 * skips PGlite's start, the larger part of a file's wait. A database that cannot be put back
 * (a transaction left open, a jobs schema dropped) is closed instead.
 *
 * The pool lives on `globalThis`: vitest may evaluate this module again for each file.
 */
import * as Reactivity from "@effect/experimental/Reactivity"
import type { SqlClient } from "@effect/sql/SqlClient"
import type { SqlError } from "@effect/sql/SqlError"
import { Clock, Duration, Effect, Exit, Scope } from "effect"
import type { DatabaseError, DataDirLocked, EngineNotInstalled, SchemaTooNew } from "../../JobError.js"
import type { PgliteEngine } from "../engines/pgliteClient.js"
import { reset } from "../store/reset.js"
import * as Image from "./pgliteImage.js"

/** What the database held when it opened from the image; anything else is a test's and goes. */
interface Baseline {
  readonly schemas: ReadonlySet<string>
  readonly roles: ReadonlySet<string>
  /** The jobs schema's objects, its migrations and the database's settings, summed up. */
  readonly shape: string
}

interface Pooled {
  readonly engine: PgliteEngine
  readonly scope: Scope.CloseableScope
  readonly baseline: Baseline
  /** Closes the database if nothing takes it first. */
  linger?: ReturnType<typeof setTimeout> | undefined
}

/**
 * How long an idle database waits to be taken. The next file of a vitest worker takes it
 * within milliseconds. A database that waits keeps Node.js running (PGlite arms a 10-second
 * timer of PostgreSQL's after writes), so a process with nothing else to do exits about this
 * long after its last layer closed.
 */
const lingerMillis = 1_000

/** A restore takes tens of milliseconds; one still running after this is given up on. */
const restoreTimeout = Duration.seconds(10)

/** At most this many idle databases per image: each holds PGlite's memory, tens of megabytes. */
const maxIdle = 2

const poolKey = Symbol.for("effect-jobs/testing/pglite-pool")

const idleOf = (image: string): Array<Pooled> => {
  const holder = globalThis as { [poolKey]?: Map<string, Array<Pooled>> }
  holder[poolKey] ??= new Map()
  const pools = holder[poolKey]
  let idle = pools.get(image)
  if (idle === undefined) {
    idle = []
    pools.set(image, idle)
  }
  return idle
}

const quote = (name: string) => `"${name.replaceAll('"', '""')}"`

const names = (sql: SqlClient, query: string) =>
  Effect.map(sql.unsafe<{ name: string }>(query), (rows) => new Set(rows.map((row) => row.name)))

/**
 * What a test could change that truncating does not undo: the jobs schema's relations and
 * columns, functions, types, triggers and constraints, the migrations it records, and settings
 * stored with `ALTER DATABASE` or `ALTER ROLE`. A database whose shape differs is not handed on.
 */
const shapeOf = (sql: SqlClient, schema: string) =>
  Effect.map(
    sql.unsafe<{ shape: string }>(
      `SELECT md5(concat_ws('|',
        (SELECT string_agg(concat_ws(':', c.relname, c.relkind, a.attname, a.atttypid, a.attnotnull), ','
           ORDER BY c.relname, a.attnum)
           FROM pg_class c LEFT JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
           WHERE c.relnamespace = $1::text::regnamespace),
        (SELECT string_agg(p.proname || '(' || p.proargtypes::text || ')', ',' ORDER BY 1)
           FROM pg_proc p WHERE p.pronamespace = $1::text::regnamespace),
        (SELECT string_agg(typname, ',' ORDER BY typname) FROM pg_type WHERE typnamespace = $1::text::regnamespace),
        (SELECT string_agg(t.tgname, ',' ORDER BY t.tgname)
           FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid WHERE c.relnamespace = $1::text::regnamespace),
        (SELECT string_agg(conname, ',' ORDER BY conname) FROM pg_constraint WHERE connamespace = $1::text::regnamespace),
        (SELECT string_agg(array_to_string(setconfig, ' '), ',' ORDER BY 1) FROM pg_db_role_setting),
        (SELECT count(*)::text FROM ${schema}.migrations)
      )) AS shape`,
      [schema],
    ),
    (rows) => rows[0]?.shape ?? "",
  )

const schemasQuery = `SELECT nspname AS name FROM pg_namespace`
const rolesQuery = `SELECT rolname AS name FROM pg_roles`

const baselineOf = (sql: SqlClient, schema: string): Effect.Effect<Baseline, SqlError> =>
  Effect.all({
    schemas: names(sql, schemasQuery),
    roles: names(sql, rolesQuery),
    shape: shapeOf(sql, schema),
  })

/**
 * Puts the database back as the image left it: session state discarded (settings, temporary
 * tables, LISTENs, prepared statements), the schemas and roles a test made dropped, `public`
 * made again as `initdb` makes it, the jobs tables emptied with their identities restarted.
 * Answers whether the jobs schema and the settings are as they were.
 */
const restore = (sql: SqlClient, schema: string, baseline: Baseline): Effect.Effect<boolean, SqlError> =>
  Effect.gen(function* () {
    // Fails inside a transaction a test left open: such a database is not handed on.
    yield* sql.unsafe("DISCARD ALL")
    const schemas = [...(yield* names(sql, schemasQuery))].filter(
      (name) =>
        !baseline.schemas.has(name) && !name.startsWith("pg_temp_") && !name.startsWith("pg_toast_temp_"),
    )
    const roles = [...(yield* names(sql, rolesQuery))].filter((name) => !baseline.roles.has(name))
    yield* sql.unsafe(
      [
        ...schemas.map((name) => `DROP SCHEMA ${quote(name)} CASCADE`),
        "DROP SCHEMA public CASCADE",
        "CREATE SCHEMA public AUTHORIZATION pg_database_owner",
        "GRANT USAGE ON SCHEMA public TO PUBLIC",
        ...roles.flatMap((name) => [`DROP OWNED BY ${quote(name)} CASCADE`, `DROP ROLE ${quote(name)}`]),
      ].join(";\n"),
    )
    yield* reset(sql, schema)
    return (yield* shapeOf(sql, schema)) === baseline.shape
  })

const open = (schema: string) =>
  Effect.gen(function* () {
    const scope = yield* Scope.make()
    const opened = yield* Image.open(schema).pipe(
      Effect.provide(Reactivity.layer),
      Scope.extend(scope),
      Effect.flatMap((engine) =>
        Effect.map(baselineOf(engine.client, schema), (baseline): Pooled => ({ engine, scope, baseline })),
      ),
      Effect.exit,
    )
    if (Exit.isFailure(opened)) yield* Scope.close(scope, opened)
    return yield* opened
  })

/** Back to the pool when it restores and there is room; closed otherwise. */
const giveBack = (image: string, schema: string, pooled: Pooled) =>
  Effect.gen(function* () {
    // On the real clock: a finalizer of a test on the TestClock would otherwise never time out.
    // A fiber left holding a transaction keeps the session, and then the restore, waiting.
    const restored = yield* restore(pooled.engine.client, schema, pooled.baseline).pipe(
      // A statement already running cannot be stopped: the timeout does not wait for it.
      Effect.disconnect,
      Effect.timeout(restoreTimeout),
      // A finalizer runs uninterruptibly, and the timeout could not interrupt the restore there.
      Effect.interruptible,
      Effect.withClock(Clock.make()),
      // Failed, timed out or interrupted: the database is closed.
      Effect.catchAllCause(() => Effect.succeed(false)),
    )
    const idle = idleOf(image)
    if (restored && idle.length < maxIdle) {
      idle.push(pooled)
      // Unreferenced: the timer itself never keeps the process running.
      pooled.linger = setTimeout(() => {
        const at = idle.indexOf(pooled)
        if (at === -1) return
        idle.splice(at, 1)
        Effect.runFork(Scope.close(pooled.scope, Exit.void))
      }, lingerMillis).unref()
      return
    }
    yield* Scope.close(pooled.scope, Exit.void)
  })

/**
 * A database opened from the image of `schema` migrated, or an idle one of the process put
 * back as the image left it; when the scope closes it goes back to the pool.
 */
export const acquire = (
  schema: string,
): Effect.Effect<
  PgliteEngine,
  SqlError | DataDirLocked | EngineNotInstalled | DatabaseError | SchemaTooNew,
  Scope.Scope
> =>
  Effect.map(
    Effect.acquireRelease(
      Effect.suspend(() => {
        const image = Image.pathOf(schema)
        const pooled = idleOf(image).pop()
        clearTimeout(pooled?.linger)
        return Effect.map(pooled === undefined ? open(schema) : Effect.succeed(pooled), (taken) => ({
          image,
          taken,
        }))
      }),
      ({ image, taken }) => giveBack(image, schema, taken),
    ),
    ({ taken }) => taken.engine,
  )
