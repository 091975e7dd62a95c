/**
 * Orphans: work that waits for nothing. A queue holding available jobs that no live node runs,
 * and a job type with waiting jobs that no live node has a handler for, would wait forever in
 * silence; the admin API lists them and the leader logs each one once, when it appears.
 */
import { Effect } from "effect"
import type { NodeInfo, Orphans } from "../api/service.js"
import { retryDatabase } from "../store/retryDatabase.js"
import type { Store } from "../store/store.js"

/** The orphans as the store and the live nodes' last heartbeats show them. */
export const find = (store: Store, nodes: ReadonlyArray<NodeInfo>) =>
  Effect.gen(function* () {
    const running = new Set(nodes.flatMap((node) => node.queues))
    const handled = new Set(nodes.flatMap((node) => node.handlers))
    const available = yield* store.availableByQueue
    const unhandled = yield* store.waitingUnhandled(Array.from(handled))
    const types = new Map<string, { type: string; waiting: number; queues: Array<string> }>()
    for (const row of unhandled) {
      const entry = types.get(row.type) ?? { type: row.type, waiting: 0, queues: [] }
      entry.waiting += row.count
      entry.queues.push(row.queue)
      types.set(row.type, entry)
    }
    return {
      queues: available
        .filter((row) => !running.has(row.queue))
        .map((row) => ({ queue: row.queue, available: row.count })),
      types: Array.from(types.values()),
    } satisfies Orphans
  })

/**
 * The leader's round: warns of each orphan that was not one when it last looked, so an orphan
 * is logged once while it lasts, and again if it comes back after it was gone.
 */
export const watch = (store: Store, nodeTimeoutMillis: number) => {
  let known = new Set<string>()
  return Effect.gen(function* () {
    const nodes = yield* store.nodes(nodeTimeoutMillis)
    const orphans = yield* find(store, nodes)
    const current = new Map<string, string>()
    for (const { queue, available } of orphans.queues) {
      current.set(
        `queue:${queue}`,
        `queue "${queue}" holds ${available} available job(s) but no live node runs it: start it on a node, or delete it`,
      )
    }
    for (const { type, waiting, queues } of orphans.types) {
      current.set(
        `type:${type}`,
        `job type "${type}" has ${waiting} waiting job(s) (queue(s) ${queues.join(", ")}) but no live node has a handler for it`,
      )
    }
    for (const [key, message] of current) {
      if (!known.has(key)) yield* Effect.logWarning(message).pipe(Effect.annotateLogs("orphan", key))
    }
    known = new Set(current.keys())
  }).pipe(retryDatabase("looking for orphaned queues and job types"))
}
