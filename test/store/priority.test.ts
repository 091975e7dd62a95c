/**
 * Priority on every engine: higher numbers are claimed first, and the migration that turned
 * the order around keeps the order of jobs stored before it.
 */
import { SqlClient } from "@effect/sql/SqlClient"
import { describe, expect, layer } from "@effect/vitest"
import { Effect } from "effect"
import { migrate, migrations } from "../../src/internal/store/migrations.js"
import * as Store from "../../src/internal/store/store.js"
import { dropSchema, engines, freshSchema } from "../support/engines.js"
import { withStore } from "./support.js"

const now = new Date("2026-01-01T00:00:00Z")

const insert = (store: Store.Store, n: number, priority: number) =>
  store.insert(
    {
      queue: "q",
      type: "t",
      state: "available",
      priority,
      maxAttempts: 3,
      meta: {},
      scheduledAt: now,
      args: [{ n }],
      argsJson: [JSON.stringify({ n })],
    },
    now,
  )

/** Claims one job at a time until none is left: the claim order. */
const claimOrder = (store: Store.Store) =>
  Effect.gen(function* () {
    const order: Array<number> = []
    for (;;) {
      const [job] = yield* store.claim("q", 1, "node", crypto.randomUUID(), new Date())
      if (job === undefined) return order
      order.push((job.args as { n: number }).n)
    }
  })

/** The version that stored priorities lower-first, the last before the order turned. */
const lowerFirstUntil = 13

for (const engine of engines) {
  describe(`priority on ${engine.name}`, () => {
    layer(engine.layer, { timeout: 60_000, excludeTestServices: true })((it) => {
      it.scoped("a priority-10 job is claimed before a priority-0 one inserted earlier", () =>
        Effect.gen(function* () {
          const { store } = yield* withStore
          yield* insert(store, 1, 0)
          yield* insert(store, 2, 10)
          const [first] = yield* store.claim("q", 1, "node", crypto.randomUUID(), new Date())
          expect(first!.priority).toBe(10)
          expect(first!.args).toEqual({ n: 2 })
        }),
      )

      it.scoped("the whole smallint range is stored, higher first, ties in insert order", () =>
        Effect.gen(function* () {
          const { store } = yield* withStore
          const priorities = [0, -32768, 32767, -1, 1, 0, 5]
          for (const [n, priority] of priorities.entries()) yield* insert(store, n, priority)
          expect(yield* claimOrder(store)).toEqual([2, 6, 4, 0, 5, 3, 1])
        }),
      )

      it.scoped("a claim of many returns them in the claim order", () =>
        Effect.gen(function* () {
          const { store } = yield* withStore
          for (const [n, priority] of [-3, 7, 0, 7, 2].entries()) yield* insert(store, n, priority)
          const claimed = yield* store.claim("q", 10, "node", crypto.randomUUID(), new Date())
          expect(claimed.map((job) => (job.args as { n: number }).n)).toEqual([1, 3, 4, 2, 0])
        }),
      )

      it.scoped("jobs and schedules stored before the order turned keep their relative order", () =>
        Effect.gen(function* () {
          const sql = yield* SqlClient
          const schema = freshSchema()
          yield* Effect.addFinalizer(() => dropSchema(sql, schema))
          // A schema as the earlier version left it, with jobs waiting: lower ran first then.
          yield* sql.unsafe(`CREATE SCHEMA ${schema}`)
          yield* sql.unsafe(
            `CREATE TABLE ${schema}.migrations (
               version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`,
          )
          for (const migration of migrations.filter((m) => m.version <= lowerFirstUntil)) {
            for (const statement of migration.statements(schema)) yield* sql.unsafe(statement)
            yield* sql.unsafe(`INSERT INTO ${schema}.migrations (version, name) VALUES ($1, $2)`, [
              migration.version,
              migration.name,
            ])
          }
          const old = [3, 0, 32767, 1, 0]
          for (const [n, priority] of old.entries()) {
            yield* sql.unsafe(
              `INSERT INTO ${schema}.jobs (queue, type, args, priority, scheduled_at, inserted_at)
               VALUES ('q', 't', $1::jsonb, $2, $3::timestamptz, $3::timestamptz)`,
              [JSON.stringify({ n }), priority, now.toISOString()],
            )
          }
          yield* sql.unsafe(
            `INSERT INTO ${schema}.schedules (name, expression, type, queue, args, priority, max_attempts, missed,
               grace_ms, last_tick_at, created_at, updated_at)
             VALUES ('urgent', '* * * * *', 't', 'q', '{}', 0, 3, 'skip', 60000, now(), now(), now()),
                    ('later', '* * * * *', 't', 'q', '{}', 4, 3, 'skip', 60000, now(), now(), now())`,
          )
          yield* migrate(sql, schema)
          const store = Store.make(sql, schema)
          // Lower-first then: 1 and 4 (0), 3 (1), 0 (3), 2 (32767); the same order now.
          expect(yield* claimOrder(store)).toEqual([1, 4, 3, 0, 2])
          const stored = yield* sql.unsafe<{ n: number; priority: number }>(
            `SELECT (args ->> 'n')::integer AS n, priority FROM ${schema}.jobs ORDER BY id`,
          )
          expect(stored.map((r) => Number(r.priority))).toEqual([-3, 0, -32767, -1, 0])
          const schedules = yield* store.schedules
          const byName = Object.fromEntries(schedules.map((s) => [s.name, s.priority]))
          expect(byName).toEqual({ urgent: 0, later: -4 })
        }),
      )
    })
  })
}
