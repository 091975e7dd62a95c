/**
 * Claims from the jobs table: plain, within the queue's cluster-wide limits, and found again
 * by lease after a claim whose commit is in doubt.
 */
import type { SqlError } from "@effect/sql/SqlError"
import { Effect } from "effect"
import type { JobRecord } from "../../JobRecord.js"
import { byClaimOrder, type ClaimPosition, claimStart } from "../queue/claimPosition.js"
import type { Run, StoreContext } from "./context.js"
import type { JobsStore, QueueLimits } from "./jobs.js"
import { lockKey } from "./migrations.js"
import { claimedRecord, columns, recordFromRow } from "./records.js"

/**
 * The claim itself is the claim_jobs function (migrations 7, 12 and 14): its plan must not follow the
 * table's statistics, and it commits without waiting for the WAL flush. Its timestamps come
 * as whole epoch milliseconds (exact: numeric arithmetic, then an integral float8), since a
 * number is parsed far more cheaply than a timestamp's text and a claim returns thousands
 * of rows.
 */
const claimStatement = (schema: string): string =>
  `SELECT id, queue, type, args, priority, attempt, max_attempts, rescues, errors, result, meta,
      floor(extract(epoch FROM scheduled_at) * 1000)::float8 AS scheduled_at,
      floor(extract(epoch FROM inserted_at) * 1000)::float8 AS inserted_at,
      resource_type, resource_id
    FROM ${schema}.claim_jobs($1, $2::integer, $3::timestamptz, $4, $5::uuid, $6::integer,
      $7::integer, $8::timestamptz, $9::bigint)`

export const make = (
  context: StoreContext,
): Pick<JobsStore, "claim" | "claimLimited" | "claimedWith" | "claimIds"> => {
  const { sql, schema, jobs, unprepared, hot } = context
  const starts = `${schema}.queue_starts`
  const claimText = claimStatement(schema)

  /**
   * Claims up to `limit` jobs, of which at most `suspects` were rescued before; the others
   * come after `after` in the claim order.
   */
  const claimThrough =
    (run: Run) =>
    (
      queue: string,
      limit: number,
      node: string,
      lease: string,
      now: Date,
      suspects = 1,
      after: ClaimPosition = claimStart,
    ): Effect.Effect<ReadonlyArray<JobRecord>, SqlError> =>
      Effect.map(
        run<any>(claimText, [
          queue,
          limit,
          now.toISOString(),
          node,
          lease,
          Math.min(suspects, limit),
          after.priority,
          Number.isFinite(after.at)
            ? new Date(after.at).toISOString()
            : after.at > 0
              ? "infinity"
              : "-infinity",
          after.id,
        ]),
        (rows) => rows.map((row) => claimedRecord(row, now, node)).sort(byClaimOrder),
      )

  const claim = claimThrough(hot)

  /**
   * A claim that respects cluster-wide limits: at most `global` jobs of the queue executing
   * across all nodes, and at most `rate.limit` attempts started per `rate.periodMillis`.
   * Claims of the queue take turns on an advisory lock, and the counts are read after the
   * lock is held (a fresh snapshot), so racing nodes cannot both see room that is not there.
   * A rate-limited claim records how many attempts it started (queue_starts, migration 9) and
   * drops the records that have left the window.
   */
  const claimLimited = (
    queue: string,
    demand: number,
    node: string,
    lease: string,
    now: Date,
    limits: QueueLimits,
    suspects = 1,
  ): Effect.Effect<ReadonlyArray<JobRecord>, SqlError> =>
    sql.withTransaction(
      Effect.gen(function* () {
        yield* sql.unsafe(`SELECT pg_advisory_xact_lock(${lockKey(`${schema}:queue:${queue}`)})`)
        const windowStart = new Date(now.getTime() - (limits.rate?.periodMillis ?? 0)).toISOString()
        const [counts] = yield* sql.unsafe<{ executing: number; started: number }>(
          `SELECT
             (SELECT count(*) FROM ${jobs} WHERE queue = $1 AND state = 'executing')::integer AS executing,
             (SELECT coalesce(sum(count), 0) FROM ${starts} WHERE queue = $1 AND started_at > $2::timestamptz)::integer
               AS started`,
          [queue, windowStart],
        )
        let allowed = demand
        if (limits.global !== undefined)
          allowed = Math.min(allowed, limits.global - Number(counts!.executing))
        if (limits.rate !== undefined)
          allowed = Math.min(allowed, limits.rate.limit - Number(counts!.started))
        if (allowed <= 0) return []
        // Inside the transaction that holds the lock, so never through `prepared`'s own connections.
        const claimed = yield* claimThrough(unprepared)(queue, allowed, node, lease, now, suspects)
        if (limits.rate !== undefined)
          yield* sql.unsafe(
            `WITH expired AS (DELETE FROM ${starts} WHERE queue = $1 AND started_at <= $2::timestamptz)
             INSERT INTO ${starts} (queue, started_at, count)
             SELECT $1, $3::timestamptz, $4::integer WHERE $4::integer > 0`,
            [queue, windowStart, now.toISOString(), claimed.length],
          )
        return claimed
      }),
    )

  return { claim, claimLimited, claimedWith: makeClaimedWith(context), claimIds: makeClaimIds(context) }
}

/**
 * The jobs a claim with this lease took. After a claim failed on a broken connection it is
 * unknown whether it committed; if it did, its jobs are found here instead of being left
 * `executing` with nobody running them.
 */
const makeClaimedWith =
  ({ sql, jobs }: StoreContext) =>
  (lease: string): Effect.Effect<ReadonlyArray<JobRecord>, SqlError> =>
    Effect.map(
      sql.unsafe(`SELECT ${columns} FROM ${jobs} WHERE lease = $1::uuid AND state = 'executing'`, [lease]),
      (rows) => rows.map(recordFromRow).sort(byClaimOrder),
    )

/**
 * Claims the given jobs by id, whatever their queue and however far off they are due: a
 * test's drain decides what runs, and a due time it skips ahead of is its own to skip.
 */
const makeClaimIds =
  ({ sql, jobs }: StoreContext) =>
  (
    ids: ReadonlyArray<number>,
    node: string,
    lease: string,
    now: Date,
  ): Effect.Effect<ReadonlyArray<JobRecord>, SqlError> =>
    ids.length === 0
      ? Effect.succeed([])
      : Effect.map(
          sql.unsafe(
            `UPDATE ${jobs} SET state = 'executing', attempt = attempt + 1, attempted_at = $2::timestamptz,
             attempted_by = $3, lease = $4::uuid
           WHERE id = ANY($1::bigint[]) AND state IN ('available', 'scheduled', 'retryable')
           RETURNING ${columns}`,
            [ids, now.toISOString(), node, lease],
          ),
          (rows) => rows.map(recordFromRow).sort((a, b) => a.priority - b.priority || a.id - b.id),
        )
