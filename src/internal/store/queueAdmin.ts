/**
 * Queues as an operator sees them across the cluster: the stored rows of every queue, the
 * jobs counted per queue, node and type (for the listing and its orphans), a queue's own
 * retention and its pruning, and the deletion of a queue.
 */
import type { SqlError } from "@effect/sql/SqlError"
import { Effect } from "effect"
import type { JobState } from "../../JobRecord.js"
import type { StoredPruning } from "../api/service.js"
import type { StoreContext } from "./context.js"
import { aliveWithin } from "./nodes.js"
import { readConcurrency, upsertSetting } from "./queues.js"
import { boundedStateCounts, listingCountBound } from "./stats.js"

/** A queue's stored row. */
export interface StoredQueue {
  readonly name: string
  readonly paused: boolean
  readonly concurrency: number | null
  readonly pruning: StoredPruning | null
}

export interface QueueAdminStore {
  /** Every queue with a stored row, by name. */
  readonly storedQueues: Effect.Effect<ReadonlyArray<StoredQueue>, SqlError>
  /**
   * How many jobs each queue has in each state (states without jobs left out): exact up to
   * `listingCountBound` a state, estimated past it (see stats.ts).
   */
  readonly countsByQueue: Effect.Effect<
    ReadonlyArray<{ readonly queue: string; readonly state: JobState; readonly count: number }>,
    SqlError
  >
  /** How many jobs of each queue execute under each node name. */
  readonly executingByNode: Effect.Effect<
    ReadonlyArray<{ readonly queue: string; readonly node: string; readonly count: number }>,
    SqlError
  >
  /** How many available jobs each queue holds (queues with none left out). */
  readonly availableByQueue: Effect.Effect<
    ReadonlyArray<{ readonly queue: string; readonly count: number }>,
    SqlError
  >
  /** Waiting jobs (scheduled, available, retryable) per type and queue, of types not in `handled`. */
  readonly waitingUnhandled: (
    handled: ReadonlyArray<string>,
  ) => Effect.Effect<
    ReadonlyArray<{ readonly type: string; readonly queue: string; readonly count: number }>,
    SqlError
  >
  /** Whether the queue has a stored row, or a node alive within `nodeTimeoutMillis` runs it. */
  readonly queueKnown: (queue: string, nodeTimeoutMillis: number) => Effect.Effect<boolean, SqlError>
  /** Whether any job, in any state, is in the queue. */
  readonly queueHasJobs: (queue: string) => Effect.Effect<boolean, SqlError>
  /** Stores the queue's own retention, or removes it with null. */
  readonly setPruning: (queue: string, pruning: StoredPruning | null) => Effect.Effect<unknown, SqlError>
  /**
   * Deletes up to `limit` jobs finished in `state` before `before`, oldest first: of `queue` only,
   * or of every queue but those in `skip` when `queue` is null. Answers how many.
   */
  readonly pruneQueues: (
    state: JobState,
    before: Date,
    limit: number,
    queue: string | null,
    skip: ReadonlyArray<string>,
  ) => Effect.Effect<number, SqlError>
  /** Deletes the queue's stored row and its rate-limit starts; true when it had a row. */
  readonly deleteQueue: (queue: string) => Effect.Effect<boolean, SqlError>
  /** Deletes up to `limit` jobs of the queue, whatever their state; answers how many. */
  readonly deleteQueueJobs: (queue: string, limit: number) => Effect.Effect<number, SqlError>
}

/** A stored retention, read back: only whole, non-negative numbers of the three states count. */
const readPruning = (value: unknown): StoredPruning | null => {
  if (typeof value !== "object" || value === null) return null
  const out: Record<string, number> = {}
  for (const state of ["completed", "cancelled", "discarded"] as const) {
    const ms = (value as Record<string, unknown>)[state]
    if (typeof ms === "number" && Number.isFinite(ms) && ms >= 0) out[state] = ms
  }
  return out
}

/** What the listing reads: the stored rows, and the jobs counted per queue, node and type. */
const makeListing = (context: StoreContext) => {
  const { sql, schema, jobs } = context
  const storedQueues = Effect.map(
    sql.unsafe<{ name: string; paused: boolean; concurrency: number | null; prune: unknown }>(
      `SELECT name, paused, concurrency, prune FROM ${schema}.queues ORDER BY name`,
    ),
    (rows) =>
      rows.map(
        (r): StoredQueue => ({
          name: r.name,
          paused: Boolean(r.paused),
          concurrency: readConcurrency(r.concurrency),
          pruning: readPruning(r.prune),
        }),
      ),
  )

  const countsByQueue = boundedStateCounts(context)(listingCountBound)

  const executingByNode = Effect.map(
    sql.unsafe<{ queue: string; node: string; count: number }>(
      `SELECT queue, attempted_by AS node, count(*)::integer AS count FROM ${jobs}
       WHERE state = 'executing' AND attempted_by IS NOT NULL GROUP BY queue, attempted_by`,
    ),
    (rows) => rows.map((r) => ({ queue: r.queue, node: r.node, count: Number(r.count) })),
  )

  // Reads the claim index alone: it holds exactly the available jobs, by queue first.
  const availableByQueue = Effect.map(
    sql.unsafe<{ queue: string; count: number }>(
      `SELECT queue, count(*)::integer AS count FROM ${jobs} WHERE state = 'available' GROUP BY queue ORDER BY queue`,
    ),
    (rows) => rows.map((r) => ({ queue: r.queue, count: Number(r.count) })),
  )

  const waitingUnhandled = (handled: ReadonlyArray<string>) =>
    Effect.map(
      sql.unsafe<{ type: string; queue: string; count: number }>(
        `SELECT type, queue, count(*)::integer AS count FROM ${jobs}
         WHERE state IN ('scheduled', 'available', 'retryable') AND type <> ALL ($1::text[])
         GROUP BY type, queue ORDER BY type, queue`,
        [handled],
      ),
      (rows) => rows.map((r) => ({ type: r.type, queue: r.queue, count: Number(r.count) })),
    )

  return { storedQueues, countsByQueue, executingByNode, availableByQueue, waitingUnhandled }
}

/** Whether a queue exists for the cluster, and whether it holds jobs. */
const makeLookups = ({ sql, schema, jobs }: StoreContext) => {
  const queueKnown = (queue: string, nodeTimeoutMillis: number) =>
    Effect.map(
      sql.unsafe<{ known: boolean }>(
        `SELECT EXISTS (SELECT 1 FROM ${schema}.queues WHERE name = $1)
           OR EXISTS (SELECT 1 FROM ${schema}.nodes
                      WHERE ${aliveWithin("$2")} AND queues @> jsonb_build_array($1::text)) AS known`,
        [queue, nodeTimeoutMillis],
      ),
      (rows) => rows[0]?.known === true,
    )

  const queueHasJobs = (queue: string) =>
    Effect.map(
      sql.unsafe<{ found: boolean }>(`SELECT EXISTS (SELECT 1 FROM ${jobs} WHERE queue = $1) AS found`, [
        queue,
      ]),
      (rows) => rows[0]?.found === true,
    )

  return { queueKnown, queueHasJobs }
}

/** A queue's retention and its pruning, and the deletion of a queue with its jobs. */
const makeRemoval = (context: StoreContext) => {
  const { sql, schema, jobs } = context
  const storePruning = upsertSetting(context, "prune", "$2::jsonb")
  const setPruning = (queue: string, pruning: StoredPruning | null) =>
    storePruning(queue, pruning === null ? null : JSON.stringify(pruning))

  // The prune_queue_jobs function (migration 14).
  const pruneQueues = (
    state: JobState,
    before: Date,
    limit: number,
    queue: string | null,
    skip: ReadonlyArray<string>,
  ) =>
    Effect.map(
      sql.unsafe<{ count: number }>(
        `SELECT ${schema}.prune_queue_jobs($1, $2::timestamptz, $3::integer, $4::text, $5::text[]) AS count`,
        [state, before.toISOString(), limit, queue, skip],
      ),
      (rows) => Number(rows[0]?.count ?? 0),
    )

  const deleteQueue = (queue: string) =>
    Effect.gen(function* () {
      yield* sql.unsafe(`DELETE FROM ${schema}.queue_starts WHERE queue = $1`, [queue])
      const rows = yield* sql.unsafe<{ name: string }>(
        `DELETE FROM ${schema}.queues WHERE name = $1 RETURNING name`,
        [queue],
      )
      return rows.length > 0
    })

  const deleteQueueJobs = (queue: string, limit: number) =>
    Effect.map(
      sql.unsafe<{ count: number }>(
        `WITH gone AS (
           DELETE FROM ${jobs} WHERE id IN (SELECT id FROM ${jobs} WHERE queue = $1 LIMIT $2) RETURNING 1
         ) SELECT count(*)::integer AS count FROM gone`,
        [queue, limit],
      ),
      (rows) => Number(rows[0]?.count ?? 0),
    )

  return { setPruning, pruneQueues, deleteQueue, deleteQueueJobs }
}

export const make = (context: StoreContext): QueueAdminStore => ({
  ...makeListing(context),
  ...makeLookups(context),
  ...makeRemoval(context),
})
