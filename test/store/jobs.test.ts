/**
 * The storage conformance suite: the statements the runtime relies on, on every engine.
 */

import { SqlClient } from "@effect/sql/SqlClient"
import { describe, expect, layer } from "@effect/vitest"
import { Effect, Option } from "effect"
import {
  type ClaimPosition,
  claimStart,
  compare,
  positionOf,
} from "../../src/internal/queue/claimPosition.js"
import { migrate, migrations } from "../../src/internal/store/migrations.js"
import { PreparedStatements } from "../../src/internal/store/prepared.js"
import * as Store from "../../src/internal/store/store.js"
import type { JobId } from "../../src/JobRecord.js"
import { dropSchema, engines, freshSchema } from "../support/engines.js"

type NewJob = Omit<Store.NewJobs, "args" | "argsJson"> & { readonly n: number }

const newJob = (n: number, overrides: Partial<NewJob> = {}): NewJob => ({
  queue: "q",
  type: "t",
  state: "available",
  priority: 0,
  maxAttempts: 3,
  meta: {},
  scheduledAt: new Date(0),
  n,
  ...overrides,
})

/** Inserts each job with its own statement, in order. */
const insertAll = (store: Store.Store, jobs: ReadonlyArray<NewJob>, now: Date) =>
  Effect.map(
    Effect.forEach(jobs, ({ n, ...common }) =>
      store.insert({ ...common, args: [{ n }], argsJson: [JSON.stringify({ n })] }, now),
    ),
    (batches) => batches.flat(),
  )

/** Jobs numbered `from`, `from + 1`, … inserted in one statement. */
const insertNumbered = (store: Store.Store, count: number, from: number, now: Date) => {
  const ns = Array.from({ length: count }, (_, i) => from + i)
  return store.insert(
    { ...newJob(0), args: ns.map((n) => ({ n })), argsJson: ns.map((n) => JSON.stringify({ n })) },
    now,
  )
}

const withStore = Effect.gen(function* () {
  const sql = yield* SqlClient
  const schema = freshSchema()
  yield* Effect.addFinalizer(() => dropSchema(sql, schema))
  yield* migrate(sql, schema)
  // On PostgreSQL the engine's layer prepares the per-job statements, as the runtime does.
  const prepared = Option.getOrUndefined(yield* Effect.serviceOption(PreparedStatements))
  return { sql, schema, prepared, store: Store.make(sql, schema, prepared) }
})

const at = (iso: string) => new Date(iso)

/** The root of a statement's executed plan (EXPLAIN ANALYZE with buffer counts). */
const explain = (sql: SqlClient, statement: string, params: ReadonlyArray<unknown> = []) =>
  Effect.map(
    sql.unsafe<{ "QUERY PLAN": unknown }>(`EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) ${statement}`, params),
    ([row]) => {
      const plan = row!["QUERY PLAN"]
      return (typeof plan === "string" ? JSON.parse(plan) : plan)[0].Plan
    },
  )

/** The blocks a plan read, from the cache or from disk. */
const blocksRead = (root: any): number => root["Shared Hit Blocks"] + root["Shared Read Blocks"]

for (const engine of engines) {
  describe(`store on ${engine.name}`, () => {
    layer(engine.layer, { timeout: 60_000, excludeTestServices: true })((it) => {
      it.scoped("migrations run once, even when several start together", () =>
        Effect.gen(function* () {
          const sql = yield* SqlClient
          const schema = freshSchema()
          yield* Effect.addFinalizer(() => dropSchema(sql, schema))
          const applied = yield* Effect.all(
            Array.from({ length: 4 }, () => migrate(sql, schema)),
            { concurrency: "unbounded" },
          )
          // One of the four applied everything; the others found nothing left to do.
          const all = migrations.map((m) => m.version)
          expect(applied.flat()).toEqual(all)
          const rows = yield* sql.unsafe<{ version: number }>(
            `SELECT version FROM ${schema}.migrations ORDER BY version`,
          )
          expect(rows.map((r) => Number(r.version))).toEqual(all)
        }),
      )

      it.scoped("a claim takes each due job once, in priority order, and stamps a lease", () =>
        Effect.gen(function* () {
          const { store } = yield* withStore
          yield* insertAll(
            store,
            [
              newJob(1, { priority: 2 }),
              newJob(2),
              newJob(3, { queue: "other" }),
              newJob(4, { state: "scheduled" }),
            ],
            at("2026-01-01T00:00:00Z"),
          )
          const [first, second] = yield* Effect.all(
            [
              store.claim(
                "q",
                1,
                "node-a",
                "00000000-0000-4000-8000-000000000001",
                at("2026-01-01T00:00:01Z"),
              ),
              store.claim(
                "q",
                5,
                "node-b",
                "00000000-0000-4000-8000-000000000002",
                at("2026-01-01T00:00:01Z"),
              ),
            ],
            { concurrency: "unbounded" },
          )
          const claimed = [...first, ...second]
          expect(claimed.map((j) => (j.args as { n: number }).n).sort()).toEqual([1, 2])
          for (const job of claimed) {
            expect(job.state).toBe("executing")
            expect(job.attempt).toBe(1)
          }
          expect(
            yield* store.claim("q", 5, "node-c", "00000000-0000-4000-8000-000000000003", new Date()),
          ).toEqual([])
        }),
      )

      it.scoped(
        "a claim after a burst reads only the jobs it takes, whatever the statistics say",
        () =>
          Effect.gen(function* () {
            const { sql, schema, store } = yield* withStore
            // A busy past the statistics have seen (300,000 jobs, all completed) and then a
            // burst: planned from those statistics, a claim fetched every waiting job and
            // sorted them all, each time.
            yield* sql.unsafe(
              `INSERT INTO ${schema}.jobs (queue, type, args, state, priority, max_attempts, meta, scheduled_at, inserted_at, completed_at)
               SELECT 'q', 't', jsonb_build_object('n', -g), 'completed', 0, 3, '{}', now(), now(), now()
               FROM generate_series(1, 300000) AS g`,
            )
            yield* sql.unsafe(`VACUUM ${schema}.jobs`)
            yield* insertNumbered(store, 20_000, 0, at("2026-01-01T00:00:00Z"))
            const explainClaim = explain(
              sql,
              `SELECT id FROM ${schema}.claim_jobs('q', 10, now(), 'node', gen_random_uuid(), 1, 32768, '-infinity', 0)`,
            )
            // The first call also reads the catalog to compile the function.
            yield* explainClaim
            const root = yield* explainClaim
            // Fetching and sorting every waiting job read 530-560 blocks here; walking the
            // claim index in order reads the ten jobs, and writing their new versions and
            // index entries brings it to 100-140.
            expect(root["Actual Rows"]).toBe(10)
            expect(blocksRead(root)).toBeLessThan(250)
            const claimed = yield* store.claim(
              "q",
              5,
              "node",
              crypto.randomUUID(),
              at("2026-01-01T00:00:01Z"),
            )
            expect(claimed.map((job) => (job.args as { n: number }).n)).toEqual([20, 21, 22, 23, 24])
          }),
        { timeout: 120_000 },
      )

      it.scoped("a claim from a position skips the entries of the jobs claimed before it", () =>
        Effect.gen(function* () {
          const { sql, schema, store } = yield* withStore
          const inserted = (count: number, from: number) =>
            insertNumbered(store, count, from, at("2026-01-01T00:00:00Z"))
          yield* inserted(20_000, 0)
          let last: ClaimPosition = claimStart
          for (let batch = 0; batch < 20; batch++) {
            const claimed = yield* store.claim("q", 1_000, "node", crypto.randomUUID(), new Date(), 0, last)
            expect(claimed).toHaveLength(1_000)
            for (const job of claimed) last = compare(positionOf(job), last) > 0 ? positionOf(job) : last
          }
          // The 20,000 claimed jobs' entries are still in the claim index, dead.
          const claimFrom = (priority: number, at: string, id: number) =>
            explain(
              sql,
              `SELECT id FROM ${schema}.claim_jobs('q', 10, now(), 'node', gen_random_uuid(), 0, $1, $2::timestamptz, $3)`,
              [priority, at, id],
            )
          yield* inserted(5, 20_000)
          const fromLast = yield* claimFrom(last.priority, new Date(last.at).toISOString(), last.id)
          expect(fromLast["Actual Rows"]).toBe(5)
          yield* inserted(5, 20_005)
          // claimStart, as the store sends it.
          const fromStart = yield* claimFrom(claimStart.priority, "-infinity", 0)
          expect(fromStart["Actual Rows"]).toBe(5)
          // From the start the claim walks past the 20,000 dead entries and the heap pages they
          // point to: 571-579 blocks here, against 46-54 from the last position, which reads
          // the new jobs and writes them.
          expect(blocksRead(fromStart)).toBeGreaterThan(400)
          expect(blocksRead(fromLast)).toBeLessThan(150)
        }),
      )

      it.scoped("a claim's transaction commits without waiting for the flush, and only that one", () =>
        Effect.gen(function* () {
          const { sql, schema, store } = yield* withStore
          yield* insertAll(store, [newJob(1)], at("2026-01-01T00:00:00Z"))
          const setting = sql.unsafe<{ value: string }>(
            `SELECT current_setting('synchronous_commit') AS value`,
          )
          const inClaim = yield* sql.withTransaction(
            Effect.zipRight(
              sql.unsafe(
                `SELECT id FROM ${schema}.claim_jobs('q', 10, now(), 'node', gen_random_uuid(), 1, 32768, '-infinity', 0)`,
              ),
              setting,
            ),
          )
          expect(inClaim[0]!.value).toBe("off")
          expect((yield* setting)[0]!.value).toBe("on")
        }),
      )

      it.scoped("an outcome applies only while its lease still holds the job", () =>
        Effect.gen(function* () {
          const { store } = yield* withStore
          const [job] = yield* insertAll(store, [newJob(1)], new Date())
          const lease = "00000000-0000-4000-8000-00000000000a"
          yield* store.claim("q", 1, "n", lease, new Date())
          const stale = yield* store.finish(
            [{ kind: "completed", id: job!.id, lease: "00000000-0000-4000-8000-00000000000b", result: 1 }],
            new Date(),
          )
          expect(stale.size).toBe(0)
          expect((yield* store.get(job!.id))!.state).toBe("executing")
          const applied = yield* store.finish(
            [{ kind: "completed", id: job!.id, lease, result: { ok: true } }],
            new Date(),
          )
          expect([...applied]).toEqual([job!.id])
          const done = (yield* store.get(job!.id))!
          expect(done.state).toBe("completed")
          expect(done.result).toEqual({ ok: true })
          // The same outcome again is a stale write: the lease was cleared.
          expect(
            (yield* store.finish([{ kind: "completed", id: job!.id, lease, result: 2 }], new Date())).size,
          ).toBe(0)
        }),
      )

      it.scoped(
        "with a retention of zero, a completion deletes its job, and only while its lease holds it",
        () =>
          Effect.gen(function* () {
            const { sql, schema, prepared } = yield* withStore
            const store = Store.make(sql, schema, prepared, false)
            const [done, failing] = yield* insertAll(store, [newJob(1), newJob(2)], new Date())
            const lease = "00000000-0000-4000-8000-00000000000c"
            yield* store.claim("q", 2, "n", lease, new Date())
            const stale = yield* store.finish(
              [
                {
                  kind: "completed",
                  id: done!.id,
                  lease: "00000000-0000-4000-8000-00000000000d",
                  result: null,
                },
              ],
              new Date(),
            )
            expect(stale.size).toBe(0)
            expect((yield* store.get(done!.id))!.state).toBe("executing")
            const error = { attempt: 1, at: new Date(), tag: "Boom", message: "boom", cause: "" }
            const applied = yield* store.finish(
              [
                // A result has nowhere to go: the job is deleted all the same.
                { kind: "completed", id: done!.id, lease, result: { ok: true } },
                { kind: "discarded", id: failing!.id, lease, error },
              ],
              new Date(),
            )
            expect([...applied].sort()).toEqual([done!.id, failing!.id].sort())
            expect(yield* store.get(done!.id)).toBeUndefined()
            // Only completions delete: other outcomes are kept for their own retention.
            expect((yield* store.get(failing!.id))!.state).toBe("discarded")
          }),
      )

      it.scoped("one statement writes outcomes of every kind", () =>
        Effect.gen(function* () {
          const { store } = yield* withStore
          const jobs = yield* insertAll(
            store,
            [1, 2, 3, 4, 5, 6].map((n) => newJob(n)),
            new Date(),
          )
          const lease = "00000000-0000-4000-8000-0000000000aa"
          yield* store.claim("q", 6, "n", lease, new Date())
          const error = { attempt: 1, at: new Date(), tag: "Boom", message: "boom", cause: "Error: boom" }
          const later = at("2030-01-01T00:00:00Z")
          const [a, b, c, d, e, f] = jobs.map((j) => j.id as JobId)
          const applied = yield* store.finish(
            [
              { kind: "completed", id: a!, lease, result: null },
              { kind: "retryable", id: b!, lease, error, retryAt: later },
              { kind: "discarded", id: c!, lease, error },
              { kind: "cancelled", id: d!, lease, error },
              { kind: "snoozed", id: e!, lease, until: later },
              { kind: "released", id: f!, lease },
            ],
            new Date(),
          )
          expect(applied.size).toBe(6)
          const rows = yield* Effect.forEach(jobs, (j) => Effect.map(store.get(j.id), (r) => r!))
          expect(rows.map((r) => [r.state, r.attempt, r.errors.length])).toEqual([
            ["completed", 1, 0],
            ["retryable", 1, 1],
            ["discarded", 1, 1],
            ["cancelled", 1, 1],
            ["scheduled", 0, 0],
            ["available", 0, 0],
          ])
          expect(rows[1]!.scheduledAt).toEqual(later)
          expect(rows[1]!.errors[0]!.message).toBe("boom")
          expect(rows[4]!.scheduledAt).toEqual(later)
        }),
      )

      it.scoped("staging promotes only due scheduled and retryable jobs", () =>
        Effect.gen(function* () {
          const { store } = yield* withStore
          yield* insertAll(
            store,
            [
              newJob(1, { state: "scheduled", scheduledAt: at("2026-01-01T00:00:00Z") }),
              newJob(2, { state: "scheduled", scheduledAt: at("2026-01-01T01:00:00Z") }),
              newJob(3, { state: "scheduled", scheduledAt: at("2026-01-01T00:00:00Z"), queue: "other" }),
            ],
            at("2025-12-31T00:00:00Z"),
          )
          const staged = yield* store.stage(at("2026-01-01T00:30:00Z"), 100)
          expect([...staged].sort((x, y) => x.queue.localeCompare(y.queue))).toEqual([
            { queue: "other", count: 1 },
            { queue: "q", count: 1 },
          ])
          const states = (yield* store.listJobs({ filter: {}, limit: 10, order: "newest" })).map((j) => [
            (j.args as { n: number }).n,
            j.state,
          ])
          expect(states.sort()).toEqual([
            [1, "available"],
            [2, "scheduled"],
            [3, "available"],
          ])
        }),
      )

      it.scoped("pruning deletes finished jobs past their retention, in bounded batches", () =>
        Effect.gen(function* () {
          const { sql, schema, store } = yield* withStore
          const jobs = yield* insertAll(
            store,
            [1, 2, 3, 4].map((n) => newJob(n)),
            new Date(),
          )
          yield* sql.unsafe(
            `UPDATE ${schema}.jobs SET state = 'completed', completed_at = $1::timestamptz WHERE id <> $2`,
            ["2026-01-01T00:00:00Z", jobs[3]!.id],
          )
          expect(yield* store.prune("completed", at("2026-01-02T00:00:00Z"), 2)).toBe(2)
          expect(yield* store.prune("completed", at("2026-01-02T00:00:00Z"), 2)).toBe(1)
          expect(yield* store.prune("completed", at("2026-01-02T00:00:00Z"), 2)).toBe(0)
          expect(yield* store.prune("discarded", at("2030-01-01T00:00:00Z"), 2)).toBe(0)
          expect(
            (yield* store.listJobs({ filter: {}, limit: 10, order: "newest" })).map((j) => j.state),
          ).toEqual(["available"])
        }),
      )

      it.scoped(
        "listing a rare state reads only its jobs, however many jobs of other states are kept",
        () =>
          Effect.gen(function* () {
            const { sql, schema, store } = yield* withStore
            // 300,000 completed jobs and three discarded ones among them.
            yield* sql.unsafe(
              `INSERT INTO ${schema}.jobs (queue, type, args, state, max_attempts, scheduled_at, inserted_at,
                 completed_at, discarded_at)
               SELECT 'q', 't', jsonb_build_object('n', g), CASE WHEN g % 100000 = 0 THEN 'discarded' ELSE 'completed' END,
                 3, now(), now(), CASE WHEN g % 100000 = 0 THEN NULL ELSE now() END,
                 CASE WHEN g % 100000 = 0 THEN now() END
               FROM generate_series(1, 300000) AS g`,
            )
            yield* sql.unsafe(`VACUUM ANALYZE ${schema}.jobs`)
            const query = {
              filter: { queue: "q", state: ["discarded" as const] },
              limit: 50,
              order: "newest" as const,
            }
            const listed = yield* store.listJobs(query)
            expect(listed.map((j) => (j.args as { n: number }).n)).toEqual([300000, 200000, 100000])
            const { text, params } = Store.pageStatement(`${schema}.jobs`, query)
            const root = yield* explain(sql, text, params)
            // With the states in a subquery the plan walked the primary key through every job
            // (6,000-6,800 blocks here); through the finished index it reads the three.
            expect(blocksRead(root)).toBeLessThan(100)
          }),
        { timeout: 120_000 },
      )

      it.scoped("each finished state is pruned by its own finish time", () =>
        Effect.gen(function* () {
          const { sql, schema, store } = yield* withStore
          const [cancelled, discarded] = yield* insertAll(store, [newJob(1), newJob(2)], new Date())
          yield* sql.unsafe(
            `UPDATE ${schema}.jobs SET state = 'cancelled', cancelled_at = '2026-01-01T00:00:00Z' WHERE id = $1`,
            [cancelled!.id],
          )
          yield* sql.unsafe(
            `UPDATE ${schema}.jobs SET state = 'discarded', discarded_at = '2026-03-01T00:00:00Z' WHERE id = $1`,
            [discarded!.id],
          )
          const cutoff = at("2026-02-01T00:00:00Z")
          expect(yield* store.prune("completed", cutoff, 10)).toBe(0)
          expect(yield* store.prune("discarded", cutoff, 10)).toBe(0)
          expect(yield* store.prune("cancelled", cutoff, 10)).toBe(1)
          expect(
            (yield* store.listJobs({ filter: {}, limit: 10, order: "newest" })).map((j) => j.state),
          ).toEqual(["discarded"])
        }),
      )

      it.scoped(
        "a pruning round reads only the jobs it deletes, however many finished jobs are kept",
        () =>
          Effect.gen(function* () {
            const { sql, schema } = yield* withStore
            // 300,000 completed jobs still within their retention, and three past it.
            yield* sql.unsafe(
              `INSERT INTO ${schema}.jobs (queue, type, args, state, max_attempts, scheduled_at, inserted_at, completed_at)
               SELECT 'q', 't', jsonb_build_object('n', g), 'completed', 3, now(), now(),
                 CASE WHEN g % 100000 = 0 THEN '2026-01-01T00:00:00Z'::timestamptz ELSE now() END
               FROM generate_series(1, 300000) AS g`,
            )
            yield* sql.unsafe(`VACUUM ANALYZE ${schema}.jobs`)
            const root = yield* explain(
              sql,
              `SELECT ${schema}.prune_jobs('completed', '2026-02-01T00:00:00Z', 1000)`,
            )
            // A sequential scan read every block of the table, 5,351 here; the finished index
            // leads straight to the three, and the catalog reads of compiling the function
            // stay under a few hundred.
            expect(blocksRead(root)).toBeLessThan(500)
            const [left] = yield* sql.unsafe<{ count: number }>(
              `SELECT count(*)::integer AS count FROM ${schema}.jobs`,
            )
            expect(Number(left!.count)).toBe(299_997)
          }),
        { timeout: 120_000 },
      )

      it.scoped("the jobs a claim took can be found again by its lease", () =>
        Effect.gen(function* () {
          const { store } = yield* withStore
          yield* insertAll(
            store,
            [1, 2, 3].map((n) => newJob(n)),
            new Date(),
          )
          const lease = "00000000-0000-4000-8000-0000000000cc"
          const claimed = yield* store.claim("q", 2, "n", lease, new Date())
          const found = yield* store.claimedWith(lease)
          expect(found.map((j) => j.id)).toEqual(claimed.map((j) => j.id))
          expect(found.every((j) => j.state === "executing" && j.attemptedBy === "n")).toBe(true)
          expect(yield* store.claimedWith("00000000-0000-4000-8000-0000000000dd")).toEqual([])
        }),
      )

      it.scoped("jobs rescued before are claimed one at a time, apart from the rest", () =>
        Effect.gen(function* () {
          const { sql, schema, store } = yield* withStore
          const jobs = yield* insertAll(
            store,
            [1, 2, 3, 4].map((n) => newJob(n)),
            new Date(),
          )
          yield* sql.unsafe(`UPDATE ${schema}.jobs SET rescues = 1 WHERE id IN ($1, $2)`, [
            jobs[0]!.id,
            jobs[1]!.id,
          ])
          const none = yield* store.claim("q", 10, "n", "00000000-0000-4000-8000-000000000101", new Date(), 0)
          expect(none.map((j) => j.rescues)).toEqual([0, 0])
          const one = yield* store.claim("q", 10, "n", "00000000-0000-4000-8000-000000000102", new Date(), 1)
          expect(one.map((j) => [j.id, j.rescues])).toEqual([[jobs[0]!.id, 1]])
        }),
      )
    })
  })
}
