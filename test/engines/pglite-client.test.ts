import * as NodeFs from "node:fs/promises"
import * as NodeOs from "node:os"
import * as NodePath from "node:path"
import { SqlClient } from "@effect/sql/SqlClient"
import { SqlError } from "@effect/sql/SqlError"
import { describe, expect, it, layer } from "@effect/vitest"
import { Chunk, Config, ConfigProvider, Deferred, Effect, Fiber, Layer, Option, Queue, Stream } from "effect"
import * as JobsPglite from "../../src/JobsPglite.js"
import { Listener } from "../../src/Listener.js"

class Boom {
  readonly _tag = "Boom"
}

/**
 * Starts consuming `channel` and returns once LISTEN is live. Nothing reports that moment, so
 * it pings the channel until a ping comes back, as the library's notifier does.
 */
const listening = (channel: string) =>
  Effect.gen(function* () {
    const sql = yield* SqlClient
    const { listen } = yield* Listener
    const received = yield* Queue.unbounded<string>()
    yield* listen(channel).pipe(
      Stream.runForEach((payload) => Queue.offer(received, payload)),
      Effect.forkScoped,
    )
    yield* sql`SELECT pg_notify(${channel}, 'ping')`.pipe(
      Effect.zipRight(
        Queue.take(received).pipe(Effect.timeoutFail({ duration: "20 millis", onTimeout: () => "not yet" })),
      ),
      Effect.retry({ times: 100 }),
    )
    // Pings sent while LISTEN was being set up may still trail in.
    yield* Effect.sleep("20 millis")
    yield* Queue.takeAll(received)
    return received
  })

const temporaryDirectory = Effect.acquireRelease(
  Effect.promise(() => NodeFs.mkdtemp(NodePath.join(NodeOs.tmpdir(), "effect-jobs-pglite-"))),
  (directory) => Effect.promise(() => NodeFs.rm(directory, { recursive: true, force: true })),
)

// The live clock: these tests measure real interleaving.
layer(JobsPglite.layer(), { excludeTestServices: true })("JobsPglite.layer, in memory", (it) => {
  it.effect("binds parameters of each JS type", () =>
    Effect.gen(function* () {
      const sql = yield* SqlClient
      const [row] = yield* sql<{ n: number; s: string; b: boolean; none: null; untyped: string }>`
        SELECT ${41}::int + 1 AS n, ${"text"}::text AS s, ${true}::bool AS b, ${null}::text AS none,
          ${"untyped"} AS untyped`
      expect(row).toEqual({ n: 42, s: "text", b: true, none: null, untyped: "untyped" })
    }),
  )

  it.effect("reads int8 and numeric as strings, like node-postgres", () =>
    Effect.gen(function* () {
      const sql = yield* SqlClient
      const [row] = yield* sql`
        SELECT 9007199254740993::int8 AS big, count(*) AS counted, 1.50::numeric AS exact,
          ARRAY[1, 2]::int8[] AS bigs, 7::int4 AS small`
      expect(row).toEqual({
        big: "9007199254740993",
        counted: "1",
        exact: "1.50",
        bigs: ["1", "2"],
        small: 7,
      })
    }),
  )

  it.effect("reads timestamptz as Date and accepts Date parameters", () =>
    Effect.gen(function* () {
      const sql = yield* SqlClient
      const at = new Date("2024-05-06T07:08:09.123Z")
      const [row] = yield* sql<{ at: Date; asText: string; later: Date }>`
        SELECT ${at}::timestamptz AS at, ${at} AS "asText", ${at}::timestamptz + interval '1 hour' AS later`
      expect(row!.at).toBeInstanceOf(Date)
      expect(row!.at.getTime()).toBe(at.getTime())
      expect(row!.asText).toBe(at.toISOString())
      expect(row!.later.getTime()).toBe(at.getTime() + 3_600_000)
    }),
  )

  it.effect("round-trips jsonb, from objects and from JSON text", () =>
    Effect.gen(function* () {
      const sql = yield* SqlClient
      yield* sql`CREATE TABLE json_docs (id int PRIMARY KEY, doc jsonb NOT NULL, note text)`
      const doc = { name: "job", tags: ["a", "b"], nested: { n: 1, ok: true, none: null } }
      yield* sql`INSERT INTO json_docs ${sql.insert({ id: 1, doc, note: { as: "text" } })}`
      yield* sql`INSERT INTO json_docs (id, doc) VALUES (2, ${JSON.stringify([1, "two"])}::jsonb)`
      const rows = yield* sql`SELECT id, doc, note FROM json_docs ORDER BY id`
      expect(rows).toEqual([
        { id: 1, doc, note: '{"as":"text"}' },
        { id: 2, doc: [1, "two"], note: null },
      ])
      const [matched] = yield* sql`SELECT id FROM json_docs WHERE doc @> ${{ nested: { n: 1 } }}::jsonb`
      expect(matched).toEqual({ id: 1 })
    }),
  )

  it.effect("binds arrays for = ANY($1), and sql.in", () =>
    Effect.gen(function* () {
      const sql = yield* SqlClient
      yield* sql`CREATE TABLE any_items (id int8 PRIMARY KEY, name text NOT NULL)`
      yield* sql`INSERT INTO any_items ${sql.insert([
        { id: 1, name: "a" },
        { id: 2, name: "b" },
        { id: 3, name: "c" },
      ])}`
      const byName = yield* sql`SELECT id FROM any_items WHERE name = ANY(${["a", "c"]}) ORDER BY id`
      expect(byName).toEqual([{ id: "1" }, { id: "3" }])
      const byId = yield* sql`SELECT name FROM any_items WHERE id = ANY(${[2, 3]}) ORDER BY id`
      expect(byId).toEqual([{ name: "b" }, { name: "c" }])
      const byIdText = yield* sql`SELECT name FROM any_items WHERE id = ANY(${["1"]}::int8[])`
      expect(byIdText).toEqual([{ name: "a" }])
      const none = yield* sql`SELECT name FROM any_items WHERE name = ANY(${[] as Array<string>})`
      expect(none).toEqual([])
      const viaIn = yield* sql`SELECT name FROM any_items WHERE ${sql.in("id", [1, 2])} ORDER BY id`
      expect(viaIn).toEqual([{ name: "a" }, { name: "b" }])
    }),
  )

  it.effect("returns values, streams and raw results", () =>
    Effect.gen(function* () {
      const sql = yield* SqlClient
      const values = yield* sql`SELECT ${1}::int AS a, 'b' AS b UNION ALL SELECT 2, 'c'`.values
      expect(values).toEqual([
        [1, "b"],
        [2, "c"],
      ])
      const streamed = yield* Stream.runCollect(sql`SELECT n FROM generate_series(1, ${3}::int) AS n`.stream)
      expect(Chunk.toReadonlyArray(streamed)).toEqual([{ n: 1 }, { n: 2 }, { n: 3 }])
      const raw = (yield* sql`SELECT ${5}::int AS n`.raw) as { rows: ReadonlyArray<unknown> }
      expect(raw.rows).toEqual([{ n: 5 }])
    }),
  )

  it.effect("runs multi-statement text, as migrations are", () =>
    Effect.gen(function* () {
      const sql = yield* SqlClient
      const migration = `
        CREATE TABLE migrated (id serial PRIMARY KEY, label text NOT NULL);
        CREATE INDEX migrated_label ON migrated (label);
        INSERT INTO migrated (label) VALUES ('one'), ('two');
      `
      yield* sql.unsafe(migration)
      yield* sql.unsafe(
        `INSERT INTO migrated (label) VALUES ('three'); UPDATE migrated SET label = upper(label)`,
      ).raw
      const rows = yield* sql`SELECT label FROM migrated ORDER BY id`
      expect(rows).toEqual([{ label: "ONE" }, { label: "TWO" }, { label: "THREE" }])
      // Several result sets come back as one array of rows per statement, as with node-postgres.
      const results = yield* sql.unsafe(`SELECT 1 AS a; SELECT 2 AS b`)
      expect(results).toEqual([[{ a: 1 }], [{ b: 2 }]])
    }),
  )

  it.effect("commits and rolls back transactions", () =>
    Effect.gen(function* () {
      const sql = yield* SqlClient
      yield* sql`CREATE TABLE tx_rows (id int PRIMARY KEY)`
      yield* sql`INSERT INTO tx_rows VALUES (1)`.pipe(sql.withTransaction)
      const rolledBack = yield* Effect.gen(function* () {
        yield* sql`INSERT INTO tx_rows VALUES (2)`
        return yield* Effect.fail(new Boom())
      }).pipe(sql.withTransaction, Effect.flip)
      expect(rolledBack).toBeInstanceOf(Boom)
      expect(yield* sql`SELECT id FROM tx_rows ORDER BY id`).toEqual([{ id: 1 }])
    }),
  )

  it.effect("rolls back when a statement inside the transaction fails, keeping the PG error as cause", () =>
    Effect.gen(function* () {
      const sql = yield* SqlClient
      yield* sql`CREATE TABLE tx_unique (id int PRIMARY KEY)`
      yield* sql`INSERT INTO tx_unique VALUES (1)`
      const error = yield* Effect.gen(function* () {
        yield* sql`INSERT INTO tx_unique VALUES (2)`
        yield* sql`INSERT INTO tx_unique VALUES (1)`
      }).pipe(sql.withTransaction, Effect.flip)
      expect(error).toBeInstanceOf(SqlError)
      expect((error as SqlError).message).toContain("duplicate key")
      expect((error as SqlError).message).toContain("23505")
      expect(((error as SqlError).cause as { code: string }).code).toBe("23505")
      expect(yield* sql`SELECT id FROM tx_unique ORDER BY id`).toEqual([{ id: 1 }])
      // The session is usable afterwards: not left inside an aborted transaction.
      yield* sql`INSERT INTO tx_unique VALUES (3)`
      expect(yield* sql`SELECT count(*) AS n FROM tx_unique`).toEqual([{ n: "2" }])
    }),
  )

  it.effect("keeps other fibers' statements out of a running transaction", () =>
    Effect.gen(function* () {
      const sql = yield* SqlClient
      yield* sql`CREATE TABLE tx_isolated (id int PRIMARY KEY)`
      const transactionStarted = yield* Deferred.make<void>()
      const transaction = yield* Effect.gen(function* () {
        yield* sql`INSERT INTO tx_isolated VALUES (1)`
        yield* Deferred.succeed(transactionStarted, undefined)
        yield* Effect.sleep("50 millis")
        yield* sql`INSERT INTO tx_isolated VALUES (2)`
        yield* Effect.sleep("50 millis")
        yield* sql`INSERT INTO tx_isolated VALUES (3)`
        return yield* sql<{ n: string }>`SELECT count(*) AS n FROM tx_isolated`
      }).pipe(sql.withTransaction, Effect.fork)
      yield* Deferred.await(transactionStarted)
      // Issued mid-transaction: each waits for the COMMIT instead of seeing 1 or 2 uncommitted rows.
      const seenByOthers = yield* Effect.all(
        Array.from({ length: 5 }, () => sql<{ n: string }>`SELECT count(*) AS n FROM tx_isolated`),
        { concurrency: "unbounded" },
      )
      expect(yield* Fiber.join(transaction)).toEqual([{ n: "3" }])
      expect(seenByOthers.flat()).toEqual(Array.from({ length: 5 }, () => ({ n: "3" })))
    }),
  )

  it.effect("lets a transaction in while another fiber queries back to back", () =>
    Effect.gen(function* () {
      const sql = yield* SqlClient
      yield* sql`CREATE TABLE tx_busy (id int PRIMARY KEY)`
      const busy = yield* sql`SELECT 1`.pipe(Effect.forever, Effect.fork)
      yield* Effect.sleep("10 millis")
      yield* Effect.all([sql`INSERT INTO tx_busy VALUES (1)`, sql`INSERT INTO tx_busy VALUES (2)`]).pipe(
        sql.withTransaction,
        Effect.timeoutFail({ duration: "2 seconds", onTimeout: () => "starved" }),
      )
      yield* Fiber.interrupt(busy)
      expect(yield* sql`SELECT count(*) AS n FROM tx_busy`).toEqual([{ n: "2" }])
    }),
  )

  it.effect("hands the session on when fibers waiting for it are interrupted", () =>
    Effect.gen(function* () {
      const sql = yield* SqlClient
      const waiters = yield* Effect.forEach(
        Array.from({ length: 300 }, (_, i) => i),
        (i) => Effect.fork(sql`SELECT ${i}::int AS n`),
      )
      // Some are interrupted while queued, some just as the session reaches them.
      const [interrupted, kept] = [
        waiters.filter((_, i) => i % 2 === 0),
        waiters.filter((_, i) => i % 2 === 1),
      ]
      yield* Effect.forEach(interrupted, Fiber.interrupt, { discard: true })
      const results = yield* Effect.forEach(kept, Fiber.join).pipe(
        Effect.timeoutFail({ duration: "5 seconds", onTimeout: () => "session lost" }),
      )
      expect(results).toHaveLength(150)
      expect(
        yield* sql`SELECT 1 AS n`.pipe(
          Effect.timeoutFail({ duration: "1 second", onTimeout: () => "session lost" }),
        ),
      ).toEqual([{ n: 1 }])
    }),
  )

  it.effect("rolls back and frees the session when a fiber is interrupted inside a transaction", () =>
    Effect.gen(function* () {
      const sql = yield* SqlClient
      yield* sql`CREATE TABLE tx_interrupted (id int PRIMARY KEY)`
      const inserted = yield* Deferred.make<void>()
      const transaction = yield* Effect.gen(function* () {
        yield* sql`INSERT INTO tx_interrupted VALUES (1)`
        yield* Deferred.succeed(inserted, undefined)
        return yield* Effect.never
      }).pipe(sql.withTransaction, Effect.fork)
      yield* Deferred.await(inserted)
      yield* Fiber.interrupt(transaction)
      expect(yield* sql`SELECT count(*) AS n FROM tx_interrupted`).toEqual([{ n: "0" }])
    }),
  )

  it.effect("rolls back a nested transaction to its savepoint only", () =>
    Effect.gen(function* () {
      const sql = yield* SqlClient
      yield* sql`CREATE TABLE tx_nested (id int PRIMARY KEY)`
      yield* Effect.gen(function* () {
        yield* sql`INSERT INTO tx_nested VALUES (1)`
        const inner = yield* Effect.gen(function* () {
          yield* sql`INSERT INTO tx_nested VALUES (2)`
          return yield* Effect.fail(new Boom())
        }).pipe(sql.withTransaction, Effect.flip)
        expect(inner).toBeInstanceOf(Boom)
        yield* sql`INSERT INTO tx_nested VALUES (3)`.pipe(sql.withTransaction)
      }).pipe(sql.withTransaction)
      expect(yield* sql`SELECT id FROM tx_nested ORDER BY id`).toEqual([{ id: 1 }, { id: 3 }])
    }),
  )

  it.scoped("delivers notifications, from transactions only once committed", () =>
    Effect.gen(function* () {
      const sql = yield* SqlClient
      const received = yield* listening("pglite_test")
      yield* sql`SELECT pg_notify('pglite_test', 'outside')`
      expect(yield* Queue.take(received)).toBe("outside")

      yield* Effect.gen(function* () {
        yield* sql`SELECT pg_notify('pglite_test', 'committed')`
        yield* Effect.sleep("20 millis")
        expect(Option.isNone(yield* Queue.poll(received)), "delivered before COMMIT").toBe(true)
      }).pipe(sql.withTransaction)
      expect(yield* Queue.take(received)).toBe("committed")

      yield* Effect.gen(function* () {
        yield* sql`SELECT pg_notify('pglite_test', 'rolled back')`
        return yield* Effect.fail(new Boom())
      }).pipe(sql.withTransaction, Effect.flip)
      yield* sql`SELECT pg_notify('pglite_test', 'after rollback')`
      expect(yield* Queue.take(received)).toBe("after rollback")
      expect(yield* Queue.takeAll(received)).toEqual(Chunk.empty())
    }),
  )

  it.effect("stops listening when the stream ends", () =>
    Effect.gen(function* () {
      const sql = yield* SqlClient
      const { listen } = yield* Listener
      const first = yield* listen("pglite_once").pipe(Stream.take(1), Stream.runCollect, Effect.fork)
      yield* sql`SELECT pg_notify('pglite_once', 'one')`.pipe(
        Effect.zipRight(Effect.sleep("10 millis")),
        Effect.zipRight(Fiber.poll(first)),
        Effect.repeat({ until: Option.isSome }),
      )
      expect(Chunk.toReadonlyArray(yield* Fiber.join(first))).toEqual(["one"])
      expect(yield* sql`SELECT pg_listening_channels() AS channel`).toEqual([])
    }),
  )

  it.effect("refuses to start listening inside a transaction instead of deadlocking", () =>
    Effect.gen(function* () {
      const sql = yield* SqlClient
      const { listen } = yield* Listener
      const error = yield* listen("pglite_in_tx").pipe(Stream.runDrain, sql.withTransaction, Effect.flip)
      expect(error).toBeInstanceOf(SqlError)
      expect(error.message).toContain("inside a transaction")
    }),
  )
})

describe("JobsPglite.layer, on disk", () => {
  it.scoped("keeps the data across closing and reopening, creating the directory", () =>
    Effect.gen(function* () {
      const dataDir = NodePath.join(yield* temporaryDirectory, "nested", "db")
      yield* Effect.gen(function* () {
        const sql = yield* SqlClient
        yield* sql`CREATE TABLE kept (id int8 PRIMARY KEY, doc jsonb)`
        yield* sql`INSERT INTO kept VALUES (1, ${{ kept: true }})`.pipe(sql.withTransaction)
      }).pipe(Effect.provide(JobsPglite.layer({ dataDir })))

      const rows = yield* SqlClient.pipe(
        Effect.flatMap((sql) => sql`SELECT id, doc FROM kept`),
        Effect.provide(
          JobsPglite.layerConfig({ dataDir: Config.string("DATA_DIR") }).pipe(
            Layer.provide(Layer.setConfigProvider(ConfigProvider.fromMap(new Map([["DATA_DIR", dataDir]])))),
          ),
        ),
      )
      expect(rows).toEqual([{ id: "1", doc: { kept: true } }])
    }),
  )

  it.effect("fails to build with a SqlError when the directory cannot be used", () =>
    Effect.gen(function* () {
      const error = yield* SqlClient.pipe(
        Effect.provide(JobsPglite.layer({ dataDir: "/dev/null/db" })),
        Effect.flip,
      )
      expect(error).toBeInstanceOf(SqlError)
    }),
  )
})
