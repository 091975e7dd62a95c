/**
 * The nodes and leader tables: each node's heartbeat row, and the one leader among them.
 * Every time compared here is the database's clock, never a node's own, which may be off.
 */
import type { SqlError } from "@effect/sql/SqlError"
import { Effect } from "effect"
import type { NodeInfo } from "../api/service.js"
import type { StoreContext } from "./context.js"
import { toDate } from "./records.js"

export type NodeRow = NodeInfo

/** What a node writes with its heartbeat; a node that runs nothing may leave out its queues' settings and handlers. */
export type NodeRegistration = Omit<NodeRow, "heartbeatAt" | "queueConfigs" | "handlers"> &
  Partial<Pick<NodeRow, "queueConfigs" | "handlers">>

const rowValues = (node: NodeRegistration) => [
  node.id,
  node.host,
  node.pid,
  JSON.stringify(node.queues),
  node.startedAt.toISOString(),
  JSON.stringify(node.queueConfigs ?? {}),
  JSON.stringify(node.handlers ?? []),
]

/**
 * The condition on a node row (of the table or of `alias`) that its heartbeat is at most
 * `timeoutParam` (a parameter, in milliseconds) old by the database's clock: what makes a node
 * live, wherever nodes are read.
 */
export const aliveWithin = (timeoutParam: string, alias?: string): string =>
  `${alias === undefined ? "" : `${alias}.`}heartbeat_at >= now() - ${timeoutParam}::double precision * interval '1 millisecond'`

export interface NodesStore {
  /**
   * The database's time. Times that different nodes compare (heartbeats, the leader's term,
   * rescue, staging) come from here.
   */
  readonly now: Effect.Effect<Date, SqlError>
  /** Registers the node or renews its heartbeat, stamped with the database's time. */
  readonly heartbeat: (node: NodeRegistration) => Effect.Effect<unknown, SqlError>
  /**
   * Registers a starting node, unless a live node holds its name: one whose heartbeat is within
   * `nodeTimeoutMillis` of the database's clock. True when registered.
   */
  readonly registerNode: (
    node: NodeRegistration,
    nodeTimeoutMillis: number,
  ) => Effect.Effect<boolean, SqlError>
  /** Removes the node's row: it stopped cleanly. */
  readonly forgetNode: (id: string) => Effect.Effect<unknown, SqlError>
  /** The nodes whose last heartbeat is at most `timeoutMillis` old by the database's clock. */
  readonly nodes: (timeoutMillis: number) => Effect.Effect<ReadonlyArray<NodeRow>, SqlError>
  /** Takes or renews leadership for `termMillis` from the database's time; true when this node holds it. */
  readonly elect: (node: string, termMillis: number) => Effect.Effect<boolean, SqlError>
  /** Gives leadership up, if this node holds it. */
  readonly resign: (node: string) => Effect.Effect<unknown, SqlError>
  /** The node whose term has not expired, if any. */
  readonly leader: Effect.Effect<string | null, SqlError>
}

export const make = ({ sql, schema }: StoreContext): NodesStore => {
  const now = Effect.map(
    sql.unsafe<{ now: number }>(`SELECT floor(extract(epoch FROM clock_timestamp()) * 1000)::float8 AS now`),
    (rows) => new Date(Number(rows[0]!.now)),
  )

  const heartbeat = (node: NodeRegistration) =>
    sql.unsafe(
      `INSERT INTO ${schema}.nodes (id, host, pid, queues, started_at, heartbeat_at, queue_configs, handlers)
       VALUES ($1, $2, $3, $4::jsonb, $5::timestamptz, clock_timestamp(), $6::jsonb, $7::jsonb)
       ON CONFLICT (id) DO UPDATE SET queues = EXCLUDED.queues, heartbeat_at = EXCLUDED.heartbeat_at,
         queue_configs = EXCLUDED.queue_configs, handlers = EXCLUDED.handlers`,
      rowValues(node),
    )

  const registerNode = (node: NodeRegistration, nodeTimeoutMillis: number) =>
    Effect.map(
      sql.unsafe<{ id: string }>(
        `INSERT INTO ${schema}.nodes AS n (id, host, pid, queues, started_at, heartbeat_at, queue_configs, handlers)
         VALUES ($1, $2, $3, $4::jsonb, $5::timestamptz, clock_timestamp(), $6::jsonb, $7::jsonb)
         ON CONFLICT (id) DO UPDATE SET host = EXCLUDED.host, pid = EXCLUDED.pid, queues = EXCLUDED.queues,
           started_at = EXCLUDED.started_at, heartbeat_at = EXCLUDED.heartbeat_at,
           queue_configs = EXCLUDED.queue_configs, handlers = EXCLUDED.handlers
         WHERE n.heartbeat_at < now() - $8 * interval '1 millisecond'
         RETURNING id`,
        [...rowValues(node), nodeTimeoutMillis],
      ),
      (rows) => rows.length > 0,
    )

  const nodes = (timeoutMillis: number) =>
    Effect.map(
      sql.unsafe<any>(
        `SELECT id, host, pid, queues, started_at, heartbeat_at, queue_configs, handlers FROM ${schema}.nodes
         WHERE ${aliveWithin("$1")} ORDER BY started_at, id`,
        [timeoutMillis],
      ),
      (rows): ReadonlyArray<NodeRow> =>
        rows.map((r) => ({
          id: r.id,
          host: r.host,
          pid: Number(r.pid),
          queues: r.queues,
          startedAt: toDate(r.started_at),
          heartbeatAt: toDate(r.heartbeat_at),
          queueConfigs: r.queue_configs ?? {},
          handlers: r.handlers ?? [],
        })),
    )

  // A term is renewed only by its holder, and taken over only once it has expired.
  const elect = (node: string, termMillis: number) =>
    Effect.map(
      sql.unsafe<{ node: string }>(
        `INSERT INTO ${schema}.leader AS l (name, node, elected_at, expires_at)
         VALUES ('maintenance', $1, clock_timestamp(), clock_timestamp() + $2::double precision * interval '1 millisecond')
         ON CONFLICT (name) DO UPDATE SET
           node = EXCLUDED.node,
           elected_at = CASE WHEN l.node = EXCLUDED.node THEN l.elected_at ELSE EXCLUDED.elected_at END,
           expires_at = EXCLUDED.expires_at
         WHERE l.node = EXCLUDED.node OR l.expires_at < EXCLUDED.elected_at
         RETURNING node`,
        [node, termMillis],
      ),
      (rows) => rows.length === 1,
    )

  return {
    now,
    heartbeat,
    registerNode,
    forgetNode: (id) => sql.unsafe(`DELETE FROM ${schema}.nodes WHERE id = $1`, [id]),
    nodes,
    elect,
    resign: (node) => sql.unsafe(`DELETE FROM ${schema}.leader WHERE node = $1`, [node]),
    leader: Effect.map(
      sql.unsafe<{ node: string }>(`SELECT node FROM ${schema}.leader WHERE expires_at >= clock_timestamp()`),
      (rows) => rows[0]?.node ?? null,
    ),
  }
}
