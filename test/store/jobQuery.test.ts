/**
 * Jobs found by a filter, on every engine: a page reads its own rows however deep it is or
 * however rare its matches, and the bulk actions touch only the states they apply to.
 */
import type { SqlClient } from "@effect/sql/SqlClient"
import { describe, expect, layer } from "@effect/vitest"
import { Effect } from "effect"
import * as Store from "../../src/internal/store/store.js"
import { engines } from "../support/engines.js"
import { withStore } from "./support.js"

/** The blocks an executed plan read, from the cache or from disk. */
const blocksRead = (sql: SqlClient, statement: string, params: ReadonlyArray<unknown>) =>
  Effect.map(
    sql.unsafe<{ "QUERY PLAN": unknown }>(`EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) ${statement}`, params),
    ([row]) => {
      const plan = row!["QUERY PLAN"]
      const root = (typeof plan === "string" ? JSON.parse(plan) : plan)[0].Plan
      return root["Shared Hit Blocks"] + root["Shared Read Blocks"]
    },
  )

/** 100,000 discarded jobs, each user id in ten of them; one in a hundred has a tenant in its meta. */
const seed = (sql: SqlClient, schema: string) =>
  Effect.zipRight(
    sql.unsafe(
      `INSERT INTO ${schema}.jobs (queue, type, args, meta, state, max_attempts, scheduled_at, inserted_at, discarded_at)
       SELECT 'q', 't', jsonb_build_object('user', jsonb_build_object('id', g % 10000), 'n', g),
         CASE WHEN g % 100 = 0 THEN jsonb_build_object('tenant', 't' || (g % 1000)) ELSE '{}' END, 'discarded', 3,
         now(), now(), now()
       FROM generate_series(1, 100000) AS g`,
    ),
    sql.unsafe(`VACUUM ANALYZE ${schema}.jobs`),
  )

for (const engine of engines) {
  describe(`job queries on ${engine.name}`, () => {
    layer(engine.layer, { timeout: 120_000, excludeTestServices: true })((it) => {
      it.scoped(
        "a rare args match and a deep page read their own rows, not the table",
        () =>
          Effect.gen(function* () {
            const { sql, schema, store } = yield* withStore
            yield* seed(sql, schema)
            const jobs = `${schema}.jobs`
            const rare: Store.PageQuery = {
              filter: { state: "discarded", args: { user: { id: 4242 } } },
              limit: 50,
              order: "newest",
            }
            const found = yield* store.listJobs(rare)
            expect(found.map((j) => (j.args as { n: number }).n)).toEqual(
              Array.from({ length: 10 }, (_, k) => 94242 - k * 10000),
            )
            const byIndex = Store.pageStatement(jobs, rare)
            // Through the GIN index: the ten rows, against the whole table's thousands of blocks.
            expect(yield* blocksRead(sql, byIndex.text, byIndex.params)).toBeLessThan(200)

            const tenant: Store.PageQuery = {
              filter: { meta: { tenant: "t500" } },
              limit: 50,
              order: "oldest",
            }
            const ofTenant = yield* store.listJobs(tenant)
            expect(ofTenant.map((j) => j.id)).toEqual(Array.from({ length: 50 }, (_, k) => 500 + k * 1000))
            const byMeta = Store.pageStatement(jobs, tenant)
            expect(yield* blocksRead(sql, byMeta.text, byMeta.params)).toBeLessThan(400)

            // Three of the jobs failed with a mailbox error: a search in error text within the
            // state reads those, not the state's 100,000 jobs.
            yield* sql.unsafe(
              `UPDATE ${jobs} SET errors = jsonb_build_array(jsonb_build_object('attempt', 1, 'at', now(),
                 'tag', 'SmtpRefused', 'message', 'Mailbox ' || id || ' full', 'cause', ''))
               WHERE id IN (10, 50000, 99990)`,
            )
            yield* sql.unsafe(`ANALYZE ${jobs}`)
            const errored: Store.PageQuery = {
              filter: { state: "discarded", error: "mailbox" },
              limit: 50,
              order: "newest",
            }
            expect((yield* store.listJobs(errored)).map((j) => j.id)).toEqual([99990, 50000, 10])
            const byErrors = Store.pageStatement(jobs, errored)
            expect(yield* blocksRead(sql, byErrors.text, byErrors.params)).toBeLessThan(100)

            const deep: Store.PageQuery = { filter: {}, limit: 50, order: "newest", after: 30_000 }
            const page = yield* store.listJobs(deep)
            expect(page.map((j) => j.id)).toEqual(Array.from({ length: 50 }, (_, k) => 29_999 - k))
            const byKeyset = Store.pageStatement(jobs, deep)
            const byOffset = Store.pageStatement(jobs, {
              filter: {},
              limit: 50,
              order: "newest",
              offset: 70_001,
            })
            expect(yield* blocksRead(sql, byKeyset.text, byKeyset.params)).toBeLessThan(50)
            // The same page by OFFSET reads every row it skips.
            expect(yield* blocksRead(sql, byOffset.text, byOffset.params)).toBeGreaterThan(500)
          }),
        { timeout: 120_000 },
      )

      it.scoped("bulk actions change only jobs in the states they apply to, a batch at a time", () =>
        Effect.gen(function* () {
          const { sql, schema, store } = yield* withStore
          yield* sql.unsafe(
            `INSERT INTO ${schema}.jobs (queue, type, args, state, max_attempts, scheduled_at, inserted_at)
             SELECT 'q', 't', jsonb_build_object('n', g),
               (ARRAY['available', 'executing', 'completed', 'discarded'])[1 + g % 4], 3, now(), now()
             FROM generate_series(1, 10) AS g`,
          )
          const now = new Date()
          const first = yield* store.cancelBatch({ queue: "q" }, 0, 3, now)
          // Cancellable: available (4, 8) and executing (1, 5, 9); the first three by id.
          expect(first.changed.map((c) => [c.record.id, c.previous])).toEqual([
            [1, "executing"],
            [4, "available"],
            [5, "executing"],
          ])
          const second = yield* store.cancelBatch({ queue: "q" }, first.last!, 3, now)
          expect(second.changed.map((c) => c.record.id)).toEqual([8, 9])
          expect(second.selected).toBe(2)
          const retried = yield* store.retryBatch({ state: "discarded" }, 0, 100, now)
          expect(retried.changed.map((c) => c.id)).toEqual([3, 7])
          const deleted = yield* store.deleteBatch({ state: ["completed", "executing"] }, 0, 100)
          // No job is executing any more; the completed ones go.
          expect(deleted.changed.map((c) => c.id)).toEqual([2, 6, 10])
        }),
      )

      it.scoped(
        "operator stats count each state per queue up to the bound and estimate past it; throughput counts recent finishes",
        () =>
          Effect.gen(function* () {
            const { sql, schema, store } = yield* withStore
            const insert = (n: number, queue: string, state: string, finishedAgo: string | null) =>
              sql.unsafe(
                `INSERT INTO ${schema}.jobs (queue, type, args, state, max_attempts, scheduled_at, inserted_at,
                   completed_at, discarded_at)
                 SELECT $1, 't', '{}'::jsonb, $2, 3, now(), now(),
                   CASE WHEN $2 = 'completed' THEN now() - $3::interval END,
                   CASE WHEN $2 = 'discarded' THEN now() - $3::interval END
                 FROM generate_series(1, $4::integer)`,
                [queue, state, finishedAgo, n],
              )
            yield* insert(300, "a", "completed", "0 seconds")
            yield* insert(100, "b", "completed", "0 seconds")
            yield* insert(60, "a", "available", null)
            yield* insert(5, "b", "available", null)
            yield* insert(2, "b", "scheduled", null)
            yield* insert(1, "b", "discarded", "2 hours")
            yield* sql.unsafe(`ANALYZE ${schema}.jobs`)
            const exact = yield* store.stateCounts(1000)
            expect(exact.map((c) => [c.queue, c.state, c.count, c.estimated])).toEqual([
              ["a", "available", 60, false],
              ["a", "completed", 300, false],
              ["b", "available", 5, false],
              ["b", "completed", 100, false],
              ["b", "discarded", 1, false],
              ["b", "scheduled", 2, false],
            ])
            // Past 50: queue a's backlog and the completed jobs are estimates; the rest stays exact.
            const bounded = yield* store.stateCounts(50)
            const of = (queue: string, state: string) =>
              bounded.find((c) => c.queue === queue && c.state === state)
            expect(of("a", "available")).toMatchObject({ estimated: true })
            expect(of("a", "available")!.count).toBeGreaterThan(50)
            expect(of("b", "available")).toEqual({
              queue: "b",
              state: "available",
              count: 5,
              estimated: false,
            })
            expect(of("b", "discarded")).toEqual({
              queue: "b",
              state: "discarded",
              count: 1,
              estimated: false,
            })
            const completed = bounded.filter((c) => c.state === "completed")
            expect(completed.every((c) => c.estimated)).toBe(true)
            const total = completed.reduce((sum, c) => sum + c.count, 0)
            expect(total).toBeGreaterThan(300)
            expect(total).toBeLessThan(500)
            // The last ten minutes: the 400 completions, not the discard of two hours ago.
            const recent = yield* store.finishedPerMinute(10)
            expect(recent.filter((f) => f.state === "completed").reduce((sum, f) => sum + f.count, 0)).toBe(
              400,
            )
            expect(recent.filter((f) => f.state === "discarded")).toEqual([])
          }),
      )
    })
  })
}
