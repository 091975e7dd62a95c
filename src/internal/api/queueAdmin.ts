/**
 * The cluster-wide queue operations of the admin API: pause, resume and scale through the
 * database; counts of one queue; the listing of every queue the cluster knows and its orphans;
 * a queue's own retention and "prune now"; and the deletion of a queue.
 */
import { Duration, Effect } from "effect"
import { QueueInUse, QueueNotFound } from "../../JobError.js"
import { JobState } from "../../JobRecord.js"
import * as Orphans from "../maintenance/orphans.js"
import { sendSignal } from "../node/notifier.js"
import { toDatabaseError } from "../store/retryDatabase.js"
import type * as Store from "../store/store.js"
import type { LocalNode } from "./api.js"
import type * as Jobs from "./service.js"
import { checkQueueName, checkWholeNumber, invalid } from "./validation.js"

/** How long finished jobs are kept, in milliseconds, per state. */
export interface Retention {
  readonly completed: number
  readonly cancelled: number
  readonly discarded: number
}

/** The runtime's default retention (`PruneConfig`'s defaults). */
export const defaultRetention: Retention = {
  completed: Duration.toMillis("1 day"),
  cancelled: Duration.toMillis("7 days"),
  discarded: Duration.toMillis("7 days"),
}

export const finishedStates = ["completed", "cancelled", "discarded"] as const

export interface QueueAdminEnvironment {
  readonly store: Store.Store
  readonly nodeTimeoutMillis: number
  readonly local: LocalNode
  /** The retention `pruneQueue` applies where the queue has none of its own. */
  readonly retention: Retention
  /** Rows deleted per statement by `pruneQueue` and `deleteQueue`. */
  readonly batchSize: number
}

const db = (operation: string) => Effect.mapError(toDatabaseError(operation))

/** Runs `batch` until it deletes fewer than `size`; answers the total. */
export const deleteInBatches = <E, R>(
  batch: Effect.Effect<number, E, R>,
  size: number,
  total = 0,
): Effect.Effect<number, E, R> =>
  Effect.flatMap(batch, (done) =>
    done < size ? Effect.succeed(total + done) : deleteInBatches(batch, size, total + done),
  )

const emptyCounts = () =>
  Object.fromEntries(JobState.literals.map((state) => [state, 0])) as Record<JobState, number>

const noReport: Jobs.NodeQueue = {
  concurrency: 0,
  paused: false,
  globalLimit: null,
  rateLimit: null,
  deadLetter: null,
}

/** Every queue the cluster knows, from the live nodes' reports, the stored rows and the jobs. */
const listQueues = (env: QueueAdminEnvironment) =>
  Effect.gen(function* () {
    const { store } = env
    const nodes = yield* store.nodes(env.nodeTimeoutMillis).pipe(db("listing nodes"))
    const stored = yield* store.storedQueues.pipe(db("reading the stored queues"))
    const counts = yield* store.countsByQueue.pipe(db("counting jobs by queue"))
    const executing = yield* store.executingByNode.pipe(db("counting executing jobs by node"))
    const names = new Set([
      ...nodes.flatMap((node) => node.queues),
      ...stored.map((row) => row.name),
      ...counts.map((row) => row.queue),
    ])
    const storedByName = new Map(stored.map((row) => [row.name, row]))
    const countsByName = new Map<string, Record<JobState, number>>()
    for (const row of counts) {
      const byState = countsByName.get(row.queue) ?? emptyCounts()
      byState[row.state] = row.count
      countsByName.set(row.queue, byState)
    }
    const running = new Map(executing.map((row) => [`${row.queue}\u0000${row.node}`, row.count]))
    return Array.from(names)
      .sort()
      .map((name): Jobs.ClusterQueue => {
        const runners = nodes
          .filter((node) => node.queues.includes(name))
          .map((node) => ({
            node: node.id,
            ...(node.queueConfigs[name] ?? noReport),
            running: running.get(`${name}\u0000${node.id}`) ?? 0,
          }))
        const row = storedByName.get(name)
        const jobCounts = countsByName.get(name) ?? emptyCounts()
        const first = runners[0]
        return {
          name,
          nodes: runners,
          paused: row?.paused ?? false,
          concurrency: row?.concurrency ?? null,
          globalLimit: first?.globalLimit ?? null,
          rateLimit: first?.rateLimit ?? null,
          deadLetter: first?.deadLetter ?? null,
          pruning: row?.pruning ?? null,
          counts: jobCounts,
          orphaned: jobCounts.available > 0 && runners.length === 0,
        }
      })
  }).pipe(Effect.withSpan("Jobs.listQueues", { captureStackTrace: false }))

/** A retention as given: each state a finite duration of zero or more. */
const decodePruning = (pruning: Jobs.QueuePruning | null) =>
  Effect.gen(function* () {
    if (pruning === null) return null
    if (typeof pruning !== "object") return yield* invalid("a queue's pruning must be an object or null")
    const out: Record<string, number> = {}
    for (const [key, value] of Object.entries(pruning)) {
      if (!(finishedStates as ReadonlyArray<string>).includes(key)) {
        return yield* invalid(
          `unknown pruning field ${JSON.stringify(key)}: give completed, cancelled or discarded`,
        )
      }
      if (value === undefined) continue
      const decoded = Duration.decodeUnknown(value)
      const millis = decoded._tag === "Some" ? Duration.toMillis(decoded.value) : Number.NaN
      if (!(Number.isFinite(millis) && millis >= 0) || (typeof value === "number" && value < 0)) {
        return yield* invalid(
          `pruning.${key} must be a finite duration of zero or more, such as "7 days", got ${JSON.stringify(value)}`,
        )
      }
      out[key] = millis
    }
    return out as Jobs.StoredPruning
  })

/** Fails with `QueueNotFound` unless the cluster knows the queue (runs it, stores it, or holds its jobs). */
const mustBeKnown = (env: QueueAdminEnvironment, name: string) =>
  Effect.gen(function* () {
    if ((yield* env.local.status(name)) !== undefined) return
    if (yield* env.store.queueKnown(name, env.nodeTimeoutMillis).pipe(db("looking the queue up"))) return
    if (yield* env.store.queueHasJobs(name).pipe(db("looking the queue up"))) return
    return yield* new QueueNotFound({ queue: name, cluster: true })
  })

const validName = (name: string) =>
  checkQueueName(name).pipe(Effect.mapError(() => new QueueNotFound({ queue: name, cluster: true })))

/** "Prune now": the queue's finished jobs past its retention, paused or not. */
const pruneQueue = (env: QueueAdminEnvironment, name: string) =>
  Effect.gen(function* () {
    const { store } = env
    yield* validName(name)
    yield* mustBeKnown(env, name)
    const own = (yield* store.storedQueues.pipe(db("reading the stored queues"))).find((q) => q.name === name)
    let deleted = 0
    for (const state of finishedStates) {
      const keep = own?.pruning?.[state] ?? env.retention[state]
      deleted += yield* deleteInBatches(
        store.now.pipe(
          Effect.flatMap((now) =>
            store.pruneQueues(state, new Date(now.getTime() - keep), env.batchSize, name, []),
          ),
          db(`pruning the ${state} jobs of queue "${name}"`),
        ),
        env.batchSize,
      )
    }
    return deleted
  }).pipe(Effect.withSpan("Jobs.pruneQueue", { attributes: { queue: name }, captureStackTrace: false }))

/** Deletes a queue no live node runs: its stored state and, when asked, its jobs. */
const deleteQueue = (env: QueueAdminEnvironment, name: string, options: Jobs.DeleteQueueOptions = {}) =>
  Effect.gen(function* () {
    const { store } = env
    yield* validName(name)
    const nodes = yield* store.nodes(env.nodeTimeoutMillis).pipe(db("listing nodes"))
    const runners = nodes.filter((node) => node.queues.includes(name)).map((node) => node.id)
    const here = yield* env.local.status(name)
    if (here !== undefined && env.local.node !== undefined && !runners.includes(env.local.node)) {
      runners.push(env.local.node)
    }
    if (runners.length > 0) return yield* new QueueInUse({ queue: name, nodes: runners })
    const hadState = yield* store.deleteQueue(name).pipe(db(`deleting the state of queue "${name}"`))
    const deleted =
      options.jobs === true
        ? yield* deleteInBatches(
            store.deleteQueueJobs(name, env.batchSize).pipe(db(`deleting the jobs of queue "${name}"`)),
            env.batchSize,
          )
        : 0
    if (!hadState && deleted === 0 && !(yield* store.queueHasJobs(name).pipe(db("looking the queue up")))) {
      return yield* new QueueNotFound({ queue: name, cluster: true })
    }
    return deleted
  }).pipe(Effect.withSpan("Jobs.deleteQueue", { attributes: { queue: name }, captureStackTrace: false }))

/** Cluster-wide queue controls, counts, listing, orphans, retention and deletion. */
export const make = (env: QueueAdminEnvironment) => {
  const { store, local } = env
  // Stored, so nodes starting later follow it, and signalled, so running nodes follow it now.
  const store_ = (name: string, paused: boolean) =>
    Effect.gen(function* () {
      const previous = yield* store.setPaused(name, paused).pipe(db("storing the queue state"))
      yield* sendSignal(store, { kind: "queue", queue: name, paused }).pipe(db("signalling the queue state"))
      yield* local.queueChanged(name)
      return previous
    })
  /** The live node that runs the queue, or `QueueNotFound` naming the node. */
  const runnerNode = (name: string, node: string) =>
    Effect.gen(function* () {
      const nodes = yield* store.nodes(env.nodeTimeoutMillis).pipe(db("listing nodes"))
      const found = nodes.find((row) => row.id === node && row.queues.includes(name))
      if (found === undefined) return yield* new QueueNotFound({ queue: name, node })
      return found
    })
  // Stored for that node alone, and signalled: the node re-reads its row as it does the queue's.
  const storeOnNode = (name: string, node: string, change: { paused: boolean } | { concurrency: number }) =>
    Effect.gen(function* () {
      yield* store
        .setNodeQueue(name, node, change, env.nodeTimeoutMillis)
        .pipe(db("storing the queue's state on a node"))
      yield* sendSignal(store, { kind: "queue", queue: name }).pipe(db("signalling the queue state"))
      if (local.node === node) yield* local.queueChanged(name)
    })
  const pauseQueue = (name: string, target: Jobs.QueueTarget = {}) =>
    Effect.gen(function* () {
      yield* checkQueueName(name)
      if (target.node !== undefined) {
        const runner = yield* runnerNode(name, target.node)
        yield* storeOnNode(name, target.node, { paused: true })
        return runner.queueConfigs[name]?.paused === true ? ("already_paused" as const) : ("paused" as const)
      }
      const wasPaused = yield* store_(name, true)
      return wasPaused ? ("already_paused" as const) : ("paused" as const)
    })
  // A queue may be paused on a node alone (started paused, or paused with localOnly), which a
  // cluster-wide resume resumes too: so "already active" also asks the live nodes.
  const resumeQueue = (name: string, target: Jobs.QueueTarget = {}) =>
    Effect.gen(function* () {
      yield* checkQueueName(name)
      if (target.node !== undefined) {
        const runner = yield* runnerNode(name, target.node)
        yield* storeOnNode(name, target.node, { paused: false })
        return runner.queueConfigs[name]?.paused === true ? ("resumed" as const) : ("already_active" as const)
      }
      const here = yield* local.status(name)
      const nodes = yield* store.nodes(env.nodeTimeoutMillis).pipe(db("listing nodes"))
      const pausedOnANode =
        here?.paused === true || nodes.some((node) => node.queueConfigs[name]?.paused === true)
      const wasPaused = yield* store_(name, false)
      return wasPaused || pausedOnANode ? ("resumed" as const) : ("already_active" as const)
    })
  const scaleQueue = (name: string, concurrency: number, target: Jobs.QueueTarget = {}) =>
    Effect.gen(function* () {
      yield* checkQueueName(name)
      yield* checkWholeNumber(`concurrency of queue "${name}"`, concurrency, 1, 10_000)
      if (target.node !== undefined) {
        yield* runnerNode(name, target.node)
        return yield* storeOnNode(name, target.node, { concurrency })
      }
      yield* store.setConcurrency(name, concurrency).pipe(db("storing the queue's concurrency"))
      yield* sendSignal(store, { kind: "queue", queue: name, concurrency }).pipe(db("signalling a scale"))
      yield* local.queueChanged(name)
    })
  const queueInfo = (name: string) =>
    Effect.gen(function* () {
      yield* validName(name)
      const here = yield* local.status(name)
      const summary = yield* store.summarize(name).pipe(db("summarizing a queue"))
      if (
        here === undefined &&
        summary.length === 0 &&
        !(yield* store.queueKnown(name, env.nodeTimeoutMillis).pipe(db("looking the queue up")))
      ) {
        return yield* new QueueNotFound({ queue: name, cluster: true })
      }
      // A queue that does not run here still has jobs to count, and a stored pause to show.
      const paused = here?.paused ?? (yield* store.isPaused(name).pipe(db("reading the queue state")))
      const states = Object.fromEntries(
        JobState.literals.map((state) => [state, { count: 0, oldest: null, newest: null }]),
      ) as Record<JobState, { count: number; oldest: Date | null; newest: Date | null }>
      for (const row of summary)
        states[row.state] = { count: row.count, oldest: row.oldest, newest: row.newest }
      return {
        name,
        limit: here?.limit ?? 0,
        running: here?.running ?? 0,
        paused,
        runningHere: here !== undefined,
        states,
      } satisfies Jobs.QueueInfo
    })
  const setQueuePruning = (name: string, pruning: Jobs.QueuePruning | null) =>
    Effect.gen(function* () {
      yield* checkQueueName(name)
      const stored = yield* decodePruning(pruning)
      yield* store.setPruning(name, stored).pipe(db(`storing the retention of queue "${name}"`))
    }).pipe(
      Effect.withSpan("Jobs.setQueuePruning", { attributes: { queue: name }, captureStackTrace: false }),
    )
  return {
    pauseQueue,
    resumeQueue,
    scaleQueue,
    queueInfo,
    listQueues: listQueues(env),
    orphans: Effect.flatMap(store.nodes(env.nodeTimeoutMillis), (nodes) => Orphans.find(store, nodes)).pipe(
      db("looking for orphans"),
      Effect.withSpan("Jobs.orphans", { captureStackTrace: false }),
    ),
    setQueuePruning,
    pruneQueue: (name: string) => pruneQueue(env, name),
    deleteQueue: (name: string, options?: Jobs.DeleteQueueOptions) => deleteQueue(env, name, options),
  }
}
