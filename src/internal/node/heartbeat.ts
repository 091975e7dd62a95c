/**
 * This node's row in `<schema>.nodes`: registered before any queue claims, so a job is never
 * attributed to a node the rescuer does not know; renewed every `heartbeatInterval`; deleted
 * when the node stops.
 *
 * A node whose heartbeat is older than `nodeTimeout` may count as dead, and its jobs be given
 * to others: while its own heartbeat is stale the claim latch stays closed, so it claims
 * nothing more until a heartbeat succeeds again.
 */
import { hostname } from "node:os"
import { Clock, Duration, Effect, type Scope } from "effect"
import type { DatabaseError } from "../../JobError.js"
import { NodeNameInUse } from "../../JobError.js"
import type { NodeQueue } from "../api/service.js"
import { retryDatabase, toDatabaseError } from "../store/retryDatabase.js"
import type { Store } from "../store/store.js"
import type { Rescued } from "../store/upkeep.js"

export interface Heartbeat {
  /** Open while this node's heartbeat is fresh; the dispatchers wait on it before claiming. */
  readonly live: Effect.Effect<void>
  /** Sends one heartbeat now, with the queues that run here. */
  readonly beat: Effect.Effect<void, unknown>
  /** Beats every `heartbeatInterval`; run it supervised. */
  readonly run: Effect.Effect<never, unknown>
  /** Closes the claim latch while the heartbeat is stale; run it supervised. */
  readonly watch: Effect.Effect<never>
}

export interface HeartbeatOptions {
  /** Where the node row is kept. */
  readonly store: Store
  /** Where heartbeats go: the engine's liveness connection, when it has one. */
  readonly livenessStore: Store
  readonly node: string
  readonly heartbeatInterval: Duration.Duration
  readonly nodeTimeout: Duration.Duration
  readonly maxRescues: number
  /** The queues running on this node, read at every beat. */
  readonly queues: () => ReadonlyArray<string>
  /** The settings this node runs each queue with, read at every beat. */
  readonly queueConfigs: Effect.Effect<Readonly<Record<string, NodeQueue>>>
  /** The job types this node has handlers for. */
  readonly handlers: ReadonlyArray<string>
  /** Told of the jobs an earlier process of this name left executing, once released. */
  readonly onRescued?: ((jobs: ReadonlyArray<Rescued>, at: number) => void) | undefined
}

// The local monotonic clock: a wall clock moved back must not make a heartbeat look fresh.
const monotonicMillis = Effect.map(Clock.currentTimeNanos, (nanos) => Number(nanos / 1_000_000n))

/**
 * Registers the node (refused while a live process holds its name, since two live processes
 * under one name would hide each other's deaths from the rescuer), releases what an earlier
 * process of the same name left executing, and removes the row when the scope closes.
 */
export const register = (
  options: HeartbeatOptions,
): Effect.Effect<Heartbeat, NodeNameInUse | DatabaseError, Scope.Scope> =>
  Effect.gen(function* () {
    const { store, livenessStore, node } = options
    const nodeTimeout = Duration.toMillis(options.nodeTimeout)
    const startedAt = new Date(yield* Clock.currentTimeMillis)
    const row = (queues: ReadonlyArray<string>, queueConfigs: Readonly<Record<string, NodeQueue>> = {}) => ({
      id: node,
      host: hostname(),
      pid: process.pid,
      queues: Array.from(queues),
      startedAt,
      queueConfigs,
      handlers: options.handlers,
    })
    const registered = yield* store
      .registerNode(row([]), nodeTimeout)
      .pipe(Effect.mapError(toDatabaseError("registering this node")))
    if (!registered) return yield* new NodeNameInUse({ node })
    const released = yield* store
      .rescueNode(node, options.maxRescues)
      .pipe(Effect.mapError(toDatabaseError("releasing the jobs of this node's previous process")))
    if (released.length > 0) {
      options.onRescued?.(released, startedAt.getTime())
      yield* Effect.logWarning(
        `released ${released.length} job(s) left executing by an earlier process named ${node}: ${released.map((r) => `${r.id} → ${r.state}`).join(", ")}`,
      )
    }
    yield* Effect.addFinalizer(() => Effect.ignore(store.forgetNode(node)))

    const latch = yield* Effect.makeLatch(true)
    // When the last successful heartbeat was sent. The database stamps it later than that, so
    // counting from here this node never thinks itself live for longer than the rescuer does.
    let lastBeat = yield* monotonicMillis
    let stale = false

    const beat = Effect.gen(function* () {
      const sentAt = yield* monotonicMillis
      yield* livenessStore.heartbeat(row(options.queues(), yield* options.queueConfigs))
      lastBeat = Math.max(lastBeat, sentAt)
      if (stale) {
        stale = false
        yield* latch.open
        yield* Effect.logInfo("the heartbeat succeeds again; claiming jobs again")
      }
    })

    const checkStale = Effect.gen(function* () {
      const silentFor = (yield* monotonicMillis) - lastBeat
      if (stale || silentFor <= nodeTimeout) return
      stale = true
      yield* latch.close
      yield* Effect.logWarning(
        `no heartbeat has succeeded for ${silentFor} ms, more than nodeTimeout: this node may count as dead, so it claims no jobs until one does`,
      )
    })

    return {
      live: latch.await,
      beat,
      run: Effect.forever(
        Effect.zipRight(Effect.sleep(options.heartbeatInterval), beat.pipe(retryDatabase("heartbeat"))),
      ),
      // Checked several times per nodeTimeout, so the latch closes soon after the heartbeat goes stale.
      watch: Effect.forever(
        Effect.zipRight(
          Effect.sleep(Duration.min(options.heartbeatInterval, Duration.millis(nodeTimeout / 4))),
          checkStale,
        ),
      ),
    }
  })
