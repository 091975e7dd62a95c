/**
 * PGlite behind `@effect/sql`'s `SqlClient`, so the library's SQL (compiled by the sql-pg
 * compiler) runs unchanged on the embedded engine and reads back the same JS types as
 * node-postgres gives.
 *
 * PGlite is one session. Plain statements each hold a session lock while they run; a
 * transaction holds it from BEGIN to COMMIT/ROLLBACK and its statements run without asking
 * again. Without the lock, another fiber's statement would land inside someone else's
 * transaction and commit or roll back with it.
 */

import * as NodeFs from "node:fs/promises"
import type * as Reactivity from "@effect/experimental/Reactivity"
import * as SqlClient from "@effect/sql/SqlClient"
import type { Connection } from "@effect/sql/SqlConnection"
import { SqlError } from "@effect/sql/SqlError"
import { PgClient } from "@effect/sql-pg"
import type { Results } from "@electric-sql/pglite"
import { Deferred, Effect, Exit, FiberId, identity, Option, type Scope, Stream } from "effect"
import type { DataDirLocked } from "../../JobError.js"
import { EngineNotInstalled } from "../../JobError.js"
import * as DataDirLock from "./dataDirLock.js"

/** The module is typed here but loaded by `make` (see `loadPglite`). */
type PgliteModule = typeof import("@electric-sql/pglite")

export interface Options {
  /** A directory to keep the database in; undefined keeps it in memory. */
  readonly dataDir?: string | undefined
  /** A database image (`dumpDataDir`'s tarball) to open instead of an empty database. */
  readonly loadDataDir?: Blob | undefined
}

export interface PgliteEngine {
  readonly client: SqlClient.SqlClient
  /** The database as a tarball, for `loadDataDir`. */
  readonly dump: Effect.Effect<Blob, SqlError>
  /** Notification payloads sent to `channel`, from the moment LISTEN has run. */
  readonly listen: (channel: string) => Stream.Stream<string, SqlError>
}

type TransformRows = (<A extends object>(rows: ReadonlyArray<A>) => ReadonlyArray<A>) | undefined

/** node-postgres parses a `date` as local midnight; PGlite would take it as UTC midnight. */
const parseLocalDate = (text: string): Date | string => {
  const match = /^(\d{4,})-(\d{2})-(\d{2})$/.exec(text)
  if (match === null) return text
  const date = new Date(Number(match[1]), Number(match[2]) - 1, Number(match[3]))
  date.setFullYear(Number(match[1]))
  return date
}

/** Result parsers where PGlite's defaults differ from node-postgres's. */
const nodePostgresParsers = (types: PgliteModule["types"]) => ({
  // int8 beyond 2^53 does not fit a JS number; node-postgres hands back the text, PGlite a number or bigint.
  [types.INT8]: identity<string>,
  [types.NUMERIC]: identity<string>,
  [types.DATE]: parseLocalDate,
})

/**
 * PGlite serializes each parameter by the type Postgres infers for its placeholder and falls
 * back to `toString()`, so an object bound to a text or untyped placeholder became
 * "[object Object]". node-postgres sends objects as JSON and Dates as timestamps whatever the
 * placeholder, and the library's SQL is written against that. Arrays stay arrays: PGlite
 * renders them as array literals for `= ANY($1)`, and as JSON for json/jsonb placeholders.
 */
const toParameter = (value: unknown): unknown => {
  if (value instanceof Date) return value.toISOString()
  if (
    value === null ||
    typeof value !== "object" ||
    Array.isArray(value) ||
    ArrayBuffer.isView(value) ||
    value instanceof ArrayBuffer
  ) {
    return value
  }
  return JSON.stringify(value)
}

const describeCause = (cause: unknown): string => {
  if (!(cause instanceof Error)) return String(cause)
  const code = (cause as { readonly code?: unknown }).code
  return typeof code === "string" ? `${cause.message} (SQLSTATE ${code})` : cause.message
}

const statementFailed = (cause: unknown) =>
  new SqlError({ cause, message: `Failed to execute statement: ${describeCause(cause)}` })

/** Double-quoted like pg's `escapeIdentifier`, so a channel reads the same on both engines. */
const quoteChannel = (channel: string): Option.Option<string> =>
  channel.length === 0 || channel.includes('"') ? Option.none() : Option.some(`"${channel}"`)

/** One result set as its rows; a multi-statement text as one array of rows per statement, like node-postgres. */
const rowsOf = (results: ReadonlyArray<Results>): ReadonlyArray<any> =>
  results.length === 1 ? results[0]!.rows : results.map((result) => result.rows)

const openFailed = (dataDir: string | undefined) => (cause: unknown) =>
  new SqlError({
    cause,
    message: `Failed to open PGlite ${dataDir === undefined ? "in memory" : `in ${dataDir}`}: ${describeCause(cause)}`,
  })

/**
 * PGlite is an optional peer dependency: an app on PostgreSQL imports effect-jobs without it
 * installed, so the module is loaded only when a PGlite database is opened.
 */
const loadPglite: Effect.Effect<PgliteModule, EngineNotInstalled> = Effect.tryPromise({
  try: () => import("@electric-sql/pglite"),
  catch: (cause) =>
    new EngineNotInstalled({
      engine: "JobsPglite",
      dependency: "@electric-sql/pglite",
      reason: describeCause(cause),
    }),
})

/** The database, and for a directory its lock, held until the scope closes (the lock last). */
const openDatabase = (
  { PGlite, types }: PgliteModule,
  dataDir: string | undefined,
  image: Blob | undefined,
) =>
  Effect.gen(function* () {
    if (dataDir !== undefined) {
      // PGlite creates only the last path segment itself.
      yield* Effect.tryPromise({
        try: () => NodeFs.mkdir(dataDir, { recursive: true }),
        catch: openFailed(dataDir),
      })
      yield* DataDirLock.acquire(dataDir)
    }
    return yield* Effect.acquireRelease(
      Effect.tryPromise({
        try: () =>
          PGlite.create({
            // PostgreSQL's startup-progress timer (`log_startup_progress_interval`) re-arms every
            // 10 s in PGlite while the database is open, which keeps Node.js running: a
            // database the testing pool holds idle would keep the process from exiting.
            startParams: [...PGlite.defaultStartParams, "-c", "log_startup_progress_interval=0"],
            ...(dataDir === undefined ? {} : { dataDir }),
            ...(image === undefined ? {} : { loadDataDir: image }),
            parsers: nodePostgresParsers(types),
          }),
        catch: openFailed(dataDir),
      }),
      // A finalizer cannot fail; a database that did not close cleanly is worth a log line.
      (pg) => Effect.tryPromise(() => pg.close()).pipe(Effect.ignoreLogged),
    )
  })

/**
 * A mutex that hands itself to the fiber that has waited longest. Effect's semaphore wakes
 * every waiter on each release, which with hundreds of fibers issuing statements spends the
 * time in wake-ups, and lets the releasing fiber take it straight back, so a fiber looping
 * over statements could keep a transaction waiting forever.
 */
const makeSessionLock = () => {
  let held = false
  // A Set iterates in insertion order and deletes in O(1): a queue that interrupted waiters can leave.
  const waiting = new Set<Deferred.Deferred<void>>()

  const release: Effect.Effect<void> = Effect.sync(() => {
    const next = waiting.values().next()
    if (next.done) {
      held = false
      return
    }
    waiting.delete(next.value)
    Deferred.unsafeDone(next.value, Exit.void)
  })

  /**
   * Waits in `restore` (interruptible) but decides in the caller's uninterruptible region: an
   * interruption can land after the lock was handed over, and then the lock is passed on
   * instead of being lost.
   */
  const acquire = (restore: <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.Effect<A, E, R>) =>
    Effect.withFiberRuntime<void>((fiber) => {
      if (!held) {
        held = true
        return Effect.void
      }
      const turn = Deferred.unsafeMake<void>(fiber.id())
      waiting.add(turn)
      return Effect.onInterrupt(restore(Deferred.await(turn)), () =>
        waiting.delete(turn) ? Effect.void : release,
      )
    })

  const withLock = <A, E>(effect: Effect.Effect<A, E>): Effect.Effect<A, E> =>
    Effect.uninterruptibleMask((restore) =>
      Effect.zipRight(acquire(restore), Effect.ensuring(restore(effect), release)),
    )

  /** Holds the lock until the current scope closes. */
  const hold: Effect.Effect<void, never, Scope.Scope> = Effect.uninterruptibleMask((restore) =>
    Effect.zipRight(
      acquire(restore),
      Effect.addFinalizer(() => release),
    ),
  )

  return { withLock, hold }
}

/**
 * PGlite answers on the microtask queue, so fibers issuing statements back to back would never
 * let timers or I/O run: `Effect.sleep`, heartbeats and sockets would all stall until the work
 * ran out. Every few milliseconds, statements finishing wait for one turn of the event loop.
 */
const makeEventLoopTurns = (everyMillis: number): Effect.Effect<void> => {
  let lastTurn = performance.now()
  let pendingTurn: Effect.Effect<void> | undefined
  return Effect.suspend(() => {
    if (pendingTurn !== undefined) return pendingTurn
    if (performance.now() - lastTurn < everyMillis) return Effect.void
    const turn = Deferred.unsafeMake<void>(FiberId.none)
    pendingTurn = Deferred.await(turn)
    setImmediate(() => {
      pendingTurn = undefined
      lastTurn = performance.now()
      Deferred.unsafeDone(turn, Exit.void)
    })
    return pendingTurn
  })
}

export const make = (
  options: Options,
): Effect.Effect<
  PgliteEngine,
  SqlError | DataDirLocked | EngineNotInstalled,
  Scope.Scope | Reactivity.Reactivity
> =>
  Effect.gen(function* () {
    const pg = yield* openDatabase(yield* loadPglite, options.dataDir, options.loadDataDir)
    const sessionLock = makeSessionLock()
    const eventLoopTurn = makeEventLoopTurns(5)

    const statement = <A>(
      guard: <X>(statement: Effect.Effect<X, SqlError>) => Effect.Effect<X, SqlError>,
      run: () => Promise<A>,
    ): Effect.Effect<A, SqlError> =>
      guard(
        // PGlite cannot cancel a running statement, so an interrupted fiber keeps the lock until
        // the statement has really finished: the next one must not start before it.
        Effect.uninterruptible(Effect.tryPromise({ try: run, catch: statementFailed })),
      ).pipe(Effect.ensuring(eventLoopTurn))

    /**
     * Without parameters the text goes through the simple protocol, which accepts several
     * statements (migrations), as node-postgres does for a query without values.
     */
    const run = (sql: string, params: ReadonlyArray<unknown>): Promise<ReadonlyArray<Results>> =>
      params.length === 0
        ? pg.exec(sql)
        : pg.query<Record<string, unknown>>(sql, params.map(toParameter)).then((result) => [result])

    const makeConnection = (
      guard: <A>(statement: Effect.Effect<A, SqlError>) => Effect.Effect<A, SqlError>,
    ): Connection => {
      const execute = (sql: string, params: ReadonlyArray<unknown>, transformRows: TransformRows) =>
        statement(guard, () => run(sql, params)).pipe(
          Effect.map((results) => (transformRows ? transformRows(rowsOf(results)) : rowsOf(results))),
        )
      return {
        execute,
        executeUnprepared: execute,
        executeRaw: (sql, params) =>
          statement(guard, () => run(sql, params)).pipe(
            Effect.map((results) => (results.length === 1 ? results[0] : results)),
          ),
        executeValues: (sql, params) =>
          statement(guard, () =>
            pg.query<Array<unknown>>(sql, params.map(toParameter), { rowMode: "array" }),
          ).pipe(Effect.map((result) => result.rows)),
        // A cursor would pin the session for as long as the consumer reads; the rows are already in memory.
        executeStream: (sql, params, transformRows) =>
          Stream.fromIterableEffect(execute(sql, params, transformRows)),
      }
    }

    const sharedConnection = makeConnection(sessionLock.withLock)
    // Only ever handed out together with the lock, which its holder keeps until its scope closes.
    const reservedConnection = makeConnection(identity)
    const reserve = Effect.as(sessionLock.hold, reservedConnection)

    const client = yield* SqlClient.make({
      acquirer: Effect.succeed(sharedConnection),
      transactionAcquirer: reserve,
      compiler: PgClient.makeCompiler(),
      spanAttributes: [
        ["db.system.name", "postgresql"],
        ["db.namespace", options.dataDir ?? "memory"],
      ],
    })

    const listenOnce = (quotedChannel: string) =>
      Stream.asyncPush<string, SqlError>(
        (emit) =>
          Effect.acquireRelease(
            // LISTEN inside another fiber's transaction would be undone by its rollback.
            sessionLock.withLock(
              Effect.tryPromise({
                try: () => pg.listen(quotedChannel, (payload) => emit.single(payload)),
                catch: (cause) =>
                  new SqlError({
                    cause,
                    message: `Failed to listen on ${quotedChannel}: ${describeCause(cause)}`,
                  }),
              }),
            ),
            (unlisten) =>
              pg.closed
                ? Effect.void
                : statement(sessionLock.withLock, () => unlisten()).pipe(Effect.ignoreLogged),
          ),
        // Dropping a payload would lose a wake-up without anyone noticing.
        { bufferSize: "unbounded" },
      )

    const listen = (channel: string): Stream.Stream<string, SqlError> =>
      Stream.unwrap(
        Effect.gen(function* () {
          const quotedChannel = quoteChannel(channel)
          if (Option.isNone(quotedChannel)) {
            return yield* new SqlError({ message: `Cannot listen on channel ${JSON.stringify(channel)}` })
          }
          // The transaction holds the session lock that LISTEN waits for: fail instead of waiting forever.
          if (Option.isSome(yield* Effect.serviceOption(SqlClient.TransactionConnection))) {
            return yield* new SqlError({
              message: `Cannot start listening on ${channel} inside a transaction with PGlite`,
            })
          }
          return listenOnce(quotedChannel.value)
        }),
      )

    const dump = sessionLock.withLock(
      Effect.tryPromise({ try: () => pg.dumpDataDir("none"), catch: statementFailed }),
    )

    return { client, listen, dump }
  })
