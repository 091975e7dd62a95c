/**
 * The leader's aggregates of finished jobs (job_stats): what charts of throughput and latency
 * read instead of the jobs.
 */
import { SqlClient } from "@effect/sql/SqlClient"
import { describe, expect, layer } from "@effect/vitest"
import { Duration, Effect, Fiber, Ref, TestClock, TestContext } from "effect"
import * as Throughput from "../../src/internal/api/throughput.js"
import * as Maintainer from "../../src/internal/maintenance/maintainer.js"
import * as Maintenance from "../../src/internal/maintenance/rounds.js"
import { migrate } from "../../src/internal/store/migrations.js"
import * as Store from "../../src/internal/store/store.js"
import { dropSchema, engines, freshSchema } from "../support/engines.js"

const setUp = Effect.gen(function* () {
  const sql = yield* SqlClient
  const schema = freshSchema()
  yield* Effect.addFinalizer(() => dropSchema(sql, schema))
  yield* migrate(sql, schema)
  return { sql, schema, store: Store.make(sql, schema) }
})

/**
 * A finished job, `ago` before the database's now: due at `ago + wait + run`, started `run`
 * before it finished.
 */
const finished = (
  sql: SqlClient,
  schema: string,
  state: "completed" | "discarded" | "cancelled",
  ago: string,
  waitMs: number,
  runMs: number,
) => {
  const column = { completed: "completed_at", discarded: "discarded_at", cancelled: "cancelled_at" }[state]
  return sql.unsafe(
    `INSERT INTO ${schema}.jobs (queue, type, state, scheduled_at, attempted_at, ${column}, attempt)
     SELECT 'q', 'report', $1, t - make_interval(secs => ($2::float8 + $3::float8) / 1000), t - make_interval(secs => $3::float8 / 1000), t, 1
     FROM (SELECT now() - $4::interval AS t) x`,
    [state, waitMs, runMs, ago],
  )
}

const sum = (points: ReadonlyArray<{ completed: number; failed: number; cancelled: number }>) => ({
  completed: points.reduce((n, p) => n + p.completed, 0),
  failed: points.reduce((n, p) => n + p.failed, 0),
  cancelled: points.reduce((n, p) => n + p.cancelled, 0),
})

for (const engine of engines) {
  describe(`aggregates on ${engine.name}`, () => {
    layer(engine.layer, { timeout: 60_000, excludeTestServices: true })((it) => {
      it.scoped("counts and latencies of finished jobs per minute and per hour, read back as charts", () =>
        Effect.gen(function* () {
          const { sql, schema, store } = yield* setUp
          for (let i = 0; i < 10; i++) yield* finished(sql, schema, "completed", "5 minutes", 100, 2000 + i)
          yield* finished(sql, schema, "completed", "5 minutes", 100, 60_000)
          yield* finished(sql, schema, "discarded", "3 minutes", 50, 500)
          yield* finished(sql, schema, "cancelled", "3 minutes", 0, 0)
          yield* finished(sql, schema, "completed", "3 hours", 10, 10)
          // A finished job older than a day is not aggregated any more.
          yield* finished(sql, schema, "completed", "26 hours", 10, 10)
          yield* Maintenance.aggregateStats(store)
          // A second round changes nothing: nothing counts twice.
          yield* Maintenance.aggregateStats(store)

          const day = yield* Throughput.throughput(store, "day")
          expect(day.points.length).toBe(288)
          expect(sum(day.points)).toEqual({ completed: 12, failed: 1, cancelled: 1 })
          const recent = day.points.filter((p) => p.completed === 11)
          expect(recent.length).toBe(1)
          // Within a bucket (about 9%) of the true values: 100 ms wait, 2 s median run, 60 s slowest.
          expect(recent[0]!.waitP50).toBeGreaterThan(90)
          expect(recent[0]!.waitP50).toBeLessThan(110)
          expect(recent[0]!.runP50).toBeGreaterThan(1800)
          expect(recent[0]!.runP50).toBeLessThan(2200)
          expect(recent[0]!.runP95).toBeGreaterThan(54_000)
          expect(recent[0]!.runP95).toBeLessThan(66_000)
          expect(day.points.filter((p) => p.completed + p.failed === 0).every((p) => p.runP50 === null)).toBe(
            true,
          )

          // Whole hours are summed from their minutes: the job of 3 hours ago is in one.
          const month = yield* Throughput.throughput(store, "month")
          expect(month.points.length).toBe(720)
          expect(sum(month.points).completed).toBe(1)
          // A row for every minute from the first job's, zeros included (the 10 s of settling
          // may leave out the current minute's predecessor).
          const [{ rows }] = yield* sql.unsafe<{ rows: number }>(
            `SELECT count(*)::integer AS rows FROM ${schema}.job_stats WHERE period = 'minute'`,
          )
          expect([179, 180]).toContain(rows)
        }),
      )

      it.scoped("writes nothing before a job finishes, so a new schema costs nothing", () =>
        Effect.gen(function* () {
          const { sql, schema, store } = yield* setUp
          yield* Maintenance.aggregateStats(store)
          const [{ rows }] = yield* sql.unsafe<{ rows: number }>(
            `SELECT count(*)::integer AS rows FROM ${schema}.job_stats`,
          )
          expect(rows).toBe(0)
        }),
      )

      it.scoped("deletes minutes older than a day and hours older than 30 days", () =>
        Effect.gen(function* () {
          const { sql, schema, store } = yield* setUp
          yield* sql.unsafe(
            `INSERT INTO ${schema}.job_stats (period, start_at, completed)
             VALUES ('minute', date_trunc('minute', now() - interval '2 days'), 5),
                    ('hour', date_trunc('hour', now() - interval '40 days'), 7),
                    ('hour', date_trunc('hour', now() - interval '20 days'), 9)`,
          )
          yield* Maintenance.aggregateStats(store)
          const kept = yield* sql.unsafe<{ period: string; completed: number }>(
            `SELECT period, completed FROM ${schema}.job_stats WHERE completed > 0 ORDER BY period`,
          )
          expect(kept).toEqual([{ period: "hour", completed: 9 }])
          expect(sum((yield* Throughput.throughput(store, "month")).points).completed).toBe(9)
        }),
      )

      it.scoped("the leader's round runs once a minute", () =>
        Effect.gen(function* () {
          const { sql, store } = yield* setUp
          const runs = yield* Ref.make(0)
          const round = Maintainer.round(
            "aggregates",
            Duration.minutes(1),
            Effect.zipRight(
              Maintenance.aggregateStats(store),
              Ref.update(runs, (n) => n + 1),
            ),
          )
          // Real queries let the round's own statements go on while the TestClock stands still.
          const runsAfterQueries = (times: number) =>
            Effect.zipRight(Effect.repeatN(sql.unsafe("SELECT 1"), times), Ref.get(runs))
          const until = (n: number) =>
            Effect.repeat(runsAfterQueries(1), { until: (done) => done >= n, times: 2000 })
          yield* Effect.gen(function* () {
            const fiber = yield* Effect.fork(Maintainer.loop(round, Effect.succeed(true)))
            expect(yield* until(1)).toBe(1)
            yield* TestClock.adjust("59 seconds")
            expect(yield* runsAfterQueries(20)).toBe(1)
            yield* TestClock.adjust("1 second")
            expect(yield* until(2)).toBe(2)
            yield* Fiber.interrupt(fiber)
          }).pipe(Effect.provide(TestContext.TestContext))
        }),
      )
    })
  })
}
