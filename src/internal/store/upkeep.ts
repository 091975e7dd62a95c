/**
 * The leader's upkeep of the jobs table: stage due jobs, prune finished ones, rescue the jobs
 * of dead nodes, and vacuum where the server does not.
 */
import type { SqlError } from "@effect/sql/SqlError"
import { Effect } from "effect"
import type { JobState } from "../../JobRecord.js"
import type { StoreContext } from "./context.js"

/** A job a rescue touched, and the state it left it in (retryable or discarded). */
export interface Rescued {
  readonly id: number
  readonly state: JobState
  readonly queue: string
  readonly type: string
  readonly attempt: number
}

type RescuedRow = { id: string; state: JobState; queue: string; type: string; attempt: number | string }
const rescuedOf = (rows: ReadonlyArray<RescuedRow>): Array<Rescued> =>
  rows.map((r) => ({
    id: Number(r.id),
    state: r.state,
    queue: r.queue,
    type: r.type,
    attempt: Number(r.attempt),
  }))

export interface UpkeepStore {
  /** Makes up to `limit` scheduled and retryable jobs due by `now` available; answers the count per queue. */
  readonly stage: (
    now: Date,
    limit: number,
  ) => Effect.Effect<ReadonlyArray<{ readonly queue: string; readonly count: number }>, SqlError>
  /** Deletes up to `limit` jobs finished in `state` before `before`, oldest first; answers how many. */
  readonly prune: (state: JobState, before: Date, limit: number) => Effect.Effect<number, SqlError>
  /** Whether the server vacuums on its own. */
  readonly autovacuumRuns: Effect.Effect<boolean, SqlError>
  /** Vacuums and analyzes the tables every job, heartbeat and rate-limited claim rewrites. */
  readonly vacuum: Effect.Effect<unknown, SqlError>
  /**
   * Releases the jobs left `executing` under `node` by an earlier process of that name, which
   * died (a `Rescued` entry, the lease cleared, discarded after `maxRescues`).
   */
  readonly rescueNode: (node: string, maxRescues: number) => Effect.Effect<ReadonlyArray<Rescued>, SqlError>
  /**
   * Releases up to `limit` jobs left `executing` by nodes silent for more than `timeoutMillis`,
   * and removes those nodes' rows.
   */
  readonly rescue: (
    timeoutMillis: number,
    maxRescues: number,
    limit: number,
  ) => Effect.Effect<ReadonlyArray<Rescued>, SqlError>
}

/** Staging, pruning and vacuuming. */
const makeHousekeeping = ({ sql, schema, jobs, channel }: StoreContext) => {
  const starts = `${schema}.queue_starts`
  // Promotes due jobs and wakes each queue that got work, in one statement. The signal says
  // where the jobs are, as the insert trigger's does (migration 14; a migration's text is
  // frozen, so the two are written out apart).
  const stageText = `WITH due AS (
      SELECT id FROM ${jobs}
      WHERE state IN ('scheduled', 'retryable') AND scheduled_at <= $1::timestamptz
      ORDER BY scheduled_at, id
      LIMIT $2
      FOR UPDATE SKIP LOCKED
    ), promoted AS (
      UPDATE ${jobs} j SET state = 'available' FROM due WHERE j.id = due.id
      RETURNING j.queue, j.priority, j.scheduled_at
    )
    SELECT queue, count(*)::integer AS count,
      pg_notify('${channel}', json_build_object('kind', 'insert', 'queue', queue, 'priority', max(priority),
        'at', CASE WHEN isfinite(min(scheduled_at)) THEN floor(extract(epoch FROM min(scheduled_at)) * 1000)::float8 END
      )::text) AS notified
    FROM promoted GROUP BY queue`
  const stage = (now: Date, limit: number) =>
    Effect.map(sql.unsafe<{ queue: string; count: number }>(stageText, [now.toISOString(), limit]), (rows) =>
      rows.map((r) => ({ queue: r.queue, count: Number(r.count) })),
    )

  // The prune_jobs function (migration 11): finished jobs of `state` past `before`, oldest first.
  const prune = (state: JobState, before: Date, limit: number) =>
    Effect.map(
      sql.unsafe<{ count: number }>(
        `SELECT ${schema}.prune_jobs($1, $2::timestamptz, $3::integer) AS count`,
        [state, before.toISOString(), limit],
      ),
      (rows) => Number(rows[0]?.count ?? 0),
    )

  /**
   * Whether the server vacuums on its own: autovacuum on, and its launcher running. PGlite has
   * no launcher, so it never does.
   */
  const autovacuumRuns = Effect.map(
    sql.unsafe<{ runs: boolean }>(
      `SELECT current_setting('autovacuum') = 'on'
         AND EXISTS (SELECT 1 FROM pg_stat_activity WHERE backend_type = 'autovacuum launcher') AS runs`,
    ),
    (rows) => rows[0]?.runs === true,
  )

  /**
   * Reclaims the dead rows of the tables every job, heartbeat and rate-limited claim rewrites,
   * and refreshes their statistics: where nothing vacuums, nothing analyzes either, and every
   * statement but the claim (whose plan is fixed) is planned from them.
   */
  const vacuum = Effect.zipRight(
    sql.unsafe(`VACUUM (ANALYZE) ${jobs}`),
    sql.unsafe(`VACUUM (ANALYZE) ${schema}.nodes, ${starts}`),
  )
  return { stage, prune, autovacuumRuns, vacuum }
}

/** The rescue of jobs whose node died. */
const makeRescue = ({ sql, schema, jobs }: StoreContext) => {
  /**
   * Jobs left `executing` under a node name by an earlier process of that name, which died:
   * the rescuer takes a name that is heartbeating again for alive, so they are released here,
   * as the rescuer would (a `Rescued` entry, the lease cleared, discarded after `maxRescues`).
   */
  const rescueNode = (node: string, maxRescues: number) =>
    Effect.map(
      sql.unsafe<RescuedRow>(
        `UPDATE ${jobs} j SET
           state = CASE WHEN j.attempt >= j.max_attempts OR j.rescues + 1 >= $2 THEN 'discarded' ELSE 'retryable' END,
           discarded_at = CASE WHEN j.attempt >= j.max_attempts OR j.rescues + 1 >= $2 THEN now() ELSE NULL END,
           scheduled_at = now(),
           rescues = j.rescues + 1,
           lease = NULL,
           errors = j.errors || jsonb_build_array(jsonb_build_object(
             'attempt', j.attempt, 'at', now(), 'tag', 'Rescued',
             'message', 'node ' || $1 || ' stopped while running this attempt (a process of the same name started again)',
             'cause', ''))
         WHERE j.state = 'executing' AND j.attempted_by = $1
         RETURNING j.id, j.state, j.queue, j.type, j.attempt`,
        [node, maxRescues],
      ),
      rescuedOf,
    )
  /**
   * Jobs left `executing` by nodes whose last heartbeat is more than `timeoutMillis` old by
   * the database's clock go back to
   * `retryable` (due now), or to `discarded` when out of attempts or rescued `maxRescues`
   * times; either way a `Rescued` entry is added to their errors and their lease is cleared,
   * so a paused worker that wakes up later cannot write an outcome for them. Dead nodes'
   * rows are removed.
   */
  const rescue = (timeoutMillis: number, maxRescues: number, limit: number) =>
    Effect.gen(function* () {
      const rows = yield* sql.unsafe<RescuedRow>(
        `WITH params AS (
           SELECT now() - $1::double precision * interval '1 millisecond' AS alive_since, now() AS at
         ), orphans AS (
           SELECT id FROM ${jobs}
           WHERE state = 'executing' AND attempted_at < (SELECT alive_since FROM params)
             AND (attempted_by IS NULL OR attempted_by NOT IN (
               SELECT id FROM ${schema}.nodes WHERE heartbeat_at >= (SELECT alive_since FROM params)))
           ORDER BY id LIMIT $3
           FOR UPDATE SKIP LOCKED
         ), decided AS (
           SELECT j.id, (j.attempt >= j.max_attempts OR j.rescues + 1 >= $2) AS give_up
           FROM ${jobs} j JOIN orphans USING (id)
         )
         UPDATE ${jobs} j SET
           state = CASE WHEN d.give_up THEN 'discarded' ELSE 'retryable' END,
           discarded_at = CASE WHEN d.give_up THEN p.at ELSE NULL END,
           scheduled_at = p.at,
           rescues = j.rescues + 1,
           lease = NULL,
           errors = j.errors || jsonb_build_array(jsonb_build_object(
             'attempt', j.attempt, 'at', p.at, 'tag', 'Rescued',
             'message', 'node ' || coalesce(j.attempted_by, '?') || ' stopped heartbeating while running this attempt',
             'cause', ''))
         FROM decided d, params p WHERE j.id = d.id
         RETURNING j.id, j.state, j.queue, j.type, j.attempt`,
        [timeoutMillis, maxRescues, limit],
      )
      yield* sql.unsafe(
        `DELETE FROM ${schema}.nodes WHERE heartbeat_at < now() - $1::double precision * interval '1 millisecond'`,
        [timeoutMillis],
      )
      return rescuedOf(rows)
    })

  return { rescueNode, rescue }
}

export const make = (ctx: StoreContext): UpkeepStore => ({ ...makeHousekeeping(ctx), ...makeRescue(ctx) })
