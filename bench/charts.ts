/**
 * `npm run bench:charts`: what the dashboard's charts and failures page cost over a table of
 * 1,000,000 jobs (a job finished every half second for almost six days; 1 % discarded and 1 %
 * retryable, with errors) on local PostgreSQL: the leader's aggregates round, the throughput
 * reads, the failure groups and a group's count and page. Medians of five runs.
 */

import { SqlClient } from "@effect/sql/SqlClient"
import { PgClient } from "@effect/sql-pg"
import { Effect, Redacted } from "effect"
import * as Api from "../src/internal/api/api.js"
import * as Throughput from "../src/internal/api/throughput.js"
import * as Maintenance from "../src/internal/maintenance/rounds.js"
import { migrate } from "../src/internal/store/migrations.js"
import * as Store from "../src/internal/store/store.js"

const schema = "effect_jobs_bench_charts"
const rows = 1_000_000
const ms = async <A>(label: string, f: () => Promise<A>) => {
  const times: number[] = []
  let last: A | undefined
  for (let i = 0; i < 5; i++) {
    const t = performance.now()
    last = await f()
    times.push(performance.now() - t)
  }
  times.sort((a, b) => a - b)
  console.log(label, times[2]!.toFixed(1), "ms")
  return last!
}
const program = Effect.gen(function* () {
  const sql = yield* SqlClient
  yield* sql.unsafe(`DROP SCHEMA IF EXISTS ${schema} CASCADE`)
  yield* migrate(sql, schema)
  const t0 = performance.now()
  yield* sql.unsafe(
    `INSERT INTO ${schema}.jobs (queue, type, args, state, attempt, errors, scheduled_at, attempted_at, completed_at, discarded_at, inserted_at)
     SELECT 'q' || (g % 10), 't' || (g % 20), '{}'::jsonb, s.state, 1,
       CASE WHEN s.state IN ('discarded', 'retryable') THEN jsonb_build_array(jsonb_build_object('attempt', 1, 'at', t.at, 'tag', 'SmtpRefused',
         'message', CASE WHEN g % 200 = 1 THEN 'Mailbox ' || g || ' full' ELSE 'Connection reset' END, 'cause', '')) ELSE '[]'::jsonb END,
       t.at - interval '50 milliseconds', t.at - interval '20 milliseconds',
       CASE WHEN s.state = 'completed' THEN t.at END, CASE WHEN s.state = 'discarded' THEN t.at END, t.at
     FROM generate_series(1, $1::integer) AS g,
       LATERAL (SELECT CASE g % 100 WHEN 1 THEN 'discarded' WHEN 2 THEN 'retryable' ELSE 'completed' END AS state) s,
       LATERAL (SELECT now() - make_interval(secs => ($1::integer - g) * 0.5) AS at) t`,
    [rows],
  )
  yield* sql.unsafe(`VACUUM ANALYZE ${schema}.jobs`)
  console.log("seeded", ((performance.now() - t0) / 1000).toFixed(1), "s")
  const store = Store.make(sql, schema)
  const client = Api.make({ store, maxPayloadBytes: 1 << 20, nodeTimeoutMillis: 30_000, local: Api.remote })
  const run = <A, E>(e: Effect.Effect<A, E>) => Effect.runPromise(e as Effect.Effect<A, never>)
  const t1 = performance.now()
  yield* Maintenance.aggregateStats(store)
  console.log(
    "first aggregates round (a day back, ~172,800 finished jobs):",
    (performance.now() - t1).toFixed(0),
    "ms",
  )
  yield* Effect.promise(() =>
    ms("aggregates round with nothing new", () => run(Maintenance.aggregateStats(store))),
  )
  yield* Effect.promise(() =>
    ms("one minute aggregated (~120 jobs)", () =>
      run(
        store.aggregateMinutes(
          new Date(Date.now() - 120_000 - (Date.now() % 60_000)),
          new Date(Date.now() - 60_000 - (Date.now() % 60_000)),
        ),
      ),
    ),
  )
  yield* Effect.promise(() => ms("throughput day", () => run(Throughput.throughput(store, "day"))))
  yield* Effect.promise(() => ms("throughput month", () => run(Throughput.throughput(store, "month"))))
  const groups = yield* Effect.promise(() =>
    ms("failureGroups (newest 5,000 of 20,000 failed)", () => run(client.failureGroups())),
  )
  console.log(groups.groups.length, "groups", groups.partial)
  const g = groups.groups[0]!
  yield* Effect.promise(() =>
    ms("count of a group", () =>
      run(
        client.count({ errorGroup: { tag: g.tag, pattern: g.pattern }, state: ["retryable", "discarded"] }),
      ),
    ),
  )
  yield* Effect.promise(() =>
    ms("list a group's page of 50", () =>
      run(
        client.listPage({
          errorGroup: { tag: g.tag, pattern: g.pattern },
          state: ["retryable", "discarded"],
          limit: 50,
        }),
      ),
    ),
  )
  yield* sql.unsafe(`DROP SCHEMA IF EXISTS ${schema} CASCADE`)
})
Effect.runPromise(
  program.pipe(
    Effect.provide(
      PgClient.layer({
        url: Redacted.make(`${process.env.DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/postgres"}`),
      }),
    ),
    Effect.scoped,
  ),
).catch((e) => {
  console.error(e)
  process.exit(1)
})
