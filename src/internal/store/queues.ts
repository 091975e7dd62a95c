/**
 * The queues table: the cluster-wide state of each queue (paused, scaled), and the signals
 * that tell other nodes to look at it again.
 */
import type { SqlError } from "@effect/sql/SqlError"
import { Effect } from "effect"
import type { StoreContext } from "./context.js"
import { aliveWithin } from "./nodes.js"

/** A queue's stored cluster-wide state. */
export interface QueueState {
  readonly paused: boolean
  /** Null where no scale was stored. */
  readonly concurrency: number | null
  /** The time of the last pause or resume as text, to compare; null where there was none. */
  readonly pausedOrResumedAt: string | null
}

/** A stored concurrency, read back: null where no scale was stored (or there is no row). */
export const readConcurrency = (value: number | null | undefined): number | null =>
  value === null || value === undefined ? null : Number(value)

/**
 * Stores one of a queue's settings (`column`, from `value`, the placeholder of the second
 * parameter with its cast), creating the row as running. A new row's `updated_at` is
 * '-infinity', and an existing row's is left alone: storing a setting is no pause or resume,
 * and nodes compare that time to tell whether one happened since they last looked.
 */
export const upsertSetting =
  ({ sql, schema }: StoreContext, column: "concurrency" | "prune", value: string) =>
  (queue: string, setting: number | string | null): Effect.Effect<unknown, SqlError> =>
    sql.unsafe(
      `INSERT INTO ${schema}.queues (name, paused, updated_at, ${column}) VALUES ($1, false, '-infinity', ${value})
       ON CONFLICT (name) DO UPDATE SET ${column} = EXCLUDED.${column}`,
      [queue, setting],
    )

/** A queue's stored state on one node: null where nothing was stored for it. */
export interface NodeQueueState {
  readonly paused: boolean | null
  readonly concurrency: number | null
  /** The time of the last pause or resume on the node as text, to compare; null where there was none. */
  readonly pausedOrResumedAt: string | null
}

export interface QueuesStore {
  /**
   * Stores a pause, resume or scale of the queue on one node (stamping the time of a pause or
   * resume), and forgets the rows of nodes silent for `nodeTimeoutMillis`.
   */
  readonly setNodeQueue: (
    queue: string,
    node: string,
    change: { readonly paused: boolean } | { readonly concurrency: number },
    nodeTimeoutMillis: number,
  ) => Effect.Effect<void, SqlError>
  /** The queue's stored state on the node. */
  readonly nodeQueueState: (queue: string, node: string) => Effect.Effect<NodeQueueState, SqlError>
  /**
   * Stores the queue as paused or running, for every node, stamping the time of the change.
   * Answers whether it was stored as paused before (false for a queue without a row).
   */
  readonly setPaused: (queue: string, paused: boolean) => Effect.Effect<boolean, SqlError>
  /**
   * Stores a cluster-wide concurrency for the queue. `updated_at` stays the time of the last
   * pause or resume ('-infinity': never), which tells nodes whether one happened since they
   * last looked.
   */
  readonly setConcurrency: (queue: string, concurrency: number) => Effect.Effect<unknown, SqlError>
  /** The queue's stored state; a queue never paused nor scaled reads as running, unscaled. */
  readonly queueState: (queue: string) => Effect.Effect<QueueState, SqlError>
  readonly isPaused: (queue: string) => Effect.Effect<boolean, SqlError>
  /** Sends `payload` on the schema's channel: a hint to the other nodes, never the change itself. */
  readonly signal: (payload: string) => Effect.Effect<unknown, SqlError>
}

export const make = (context: StoreContext): QueuesStore => {
  const { sql, schema, channel } = context
  // Read under the row's lock, so of two racing pauses of a stored queue only one reads it unpaused.
  const setPaused = (queue: string, paused: boolean) =>
    sql.withTransaction(
      Effect.gen(function* () {
        const before = yield* sql.unsafe<{ paused: boolean }>(
          `SELECT paused FROM ${schema}.queues WHERE name = $1 FOR UPDATE`,
          [queue],
        )
        yield* sql.unsafe(
          `INSERT INTO ${schema}.queues (name, paused, updated_at) VALUES ($1, $2, now())
           ON CONFLICT (name) DO UPDATE SET paused = EXCLUDED.paused, updated_at = EXCLUDED.updated_at`,
          [queue, paused],
        )
        return before[0]?.paused === true
      }),
    )

  const setConcurrency: (queue: string, concurrency: number) => Effect.Effect<unknown, SqlError> =
    upsertSetting(context, "concurrency", "$2")

  const queueState = (queue: string) =>
    Effect.map(
      sql.unsafe<{ paused: boolean; concurrency: number | null; stamp: string | null }>(
        `SELECT paused, concurrency, CASE WHEN isfinite(updated_at) THEN updated_at::text END AS stamp
         FROM ${schema}.queues WHERE name = $1`,
        [queue],
      ),
      (rows): QueueState => {
        const row = rows[0]
        return {
          paused: Boolean(row?.paused),
          concurrency: readConcurrency(row?.concurrency),
          pausedOrResumedAt: row?.stamp ?? null,
        }
      },
    )

  const setNodeQueue = (
    queue: string,
    node: string,
    change: { readonly paused: boolean } | { readonly concurrency: number },
    nodeTimeoutMillis: number,
  ) =>
    sql.withTransaction(
      Effect.gen(function* () {
        yield* sql.unsafe(
          `DELETE FROM ${schema}.queue_nodes q WHERE NOT EXISTS (
             SELECT 1 FROM ${schema}.nodes n
             WHERE n.id = q.node AND ${aliveWithin("$1", "n")})`,
          [nodeTimeoutMillis],
        )
        yield* "paused" in change
          ? sql.unsafe(
              `INSERT INTO ${schema}.queue_nodes (queue, node, paused, paused_at) VALUES ($1, $2, $3, now())
               ON CONFLICT (queue, node) DO UPDATE SET paused = EXCLUDED.paused, paused_at = EXCLUDED.paused_at`,
              [queue, node, change.paused],
            )
          : sql.unsafe(
              `INSERT INTO ${schema}.queue_nodes (queue, node, concurrency) VALUES ($1, $2, $3)
               ON CONFLICT (queue, node) DO UPDATE SET concurrency = EXCLUDED.concurrency`,
              [queue, node, change.concurrency],
            )
      }),
    )

  const nodeQueueState = (queue: string, node: string) =>
    Effect.map(
      sql.unsafe<{ paused: boolean | null; concurrency: number | null; stamp: string | null }>(
        `SELECT paused, concurrency, paused_at::text AS stamp FROM ${schema}.queue_nodes WHERE queue = $1 AND node = $2`,
        [queue, node],
      ),
      (rows): NodeQueueState => ({
        paused: rows[0]?.paused ?? null,
        concurrency: readConcurrency(rows[0]?.concurrency),
        pausedOrResumedAt: rows[0]?.stamp ?? null,
      }),
    )

  return {
    setNodeQueue,
    nodeQueueState,
    setPaused,
    setConcurrency,
    queueState,
    isPaused: (queue) => Effect.map(queueState(queue), (state) => state.paused),
    signal: (payload) => sql.unsafe(`SELECT pg_notify($1, $2)`, [channel, payload]),
  }
}
