/**
 * What the runtime tells the outside world about jobs: lifecycle events on a sliding PubSub
 * (publishing never waits for a slow subscriber) and metrics.
 */
import {
  Effect,
  Metric,
  MetricBoundaries,
  MetricKey,
  type MetricKeyType,
  MetricLabel,
  PubSub,
  type Queue,
  type Scope,
  Stream,
} from "effect"
import { JobEvent } from "../JobEvent.js"
import type { JobId, JobRecord } from "../JobRecord.js"
import type { Outcome } from "./store/store.js"
import type { Rescued } from "./store/upkeep.js"

const attemptsKey = MetricKey.counter("effect_jobs_attempts_total", {
  description: "Finished attempts, tagged by queue, type and outcome",
  incremental: true,
})
const insertedKey = MetricKey.counter("effect_jobs_inserted_total", {
  description: "Jobs inserted, tagged by queue and type",
  incremental: true,
})
const millisBoundaries = MetricBoundaries.exponential({ start: 1, factor: 2, count: 20 })
const runKey = MetricKey.histogram(
  "effect_jobs_run_ms",
  millisBoundaries,
  "Time an attempt ran, by queue and type",
)

export const attemptsTotal = Metric.fromMetricKey(attemptsKey)
export const insertedTotal = Metric.fromMetricKey(insertedKey)
export const runMillis = Metric.fromMetricKey(runKey)
const startedKey = MetricKey.counter("effect_jobs_started_total", {
  description: "Attempts started on this node, tagged by queue and type",
  incremental: true,
})
const queueWaitKey = MetricKey.histogram(
  "effect_jobs_queue_wait_ms",
  millisBoundaries,
  "Time from when a job was due to when an attempt started, by queue",
)
export const startedTotal = Metric.fromMetricKey(startedKey)
export const queueWaitMillis = Metric.fromMetricKey(queueWaitKey)
const rescuedKey = MetricKey.counter("effect_jobs_rescued_total", {
  description: "Jobs this node (the leader) gave back from stopped nodes, tagged by queue, type and state",
  incremental: true,
})
export const rescuedTotal = Metric.fromMetricKey(rescuedKey)
/** Sampled with each heartbeat. */
export const runningGauge = Metric.gauge("effect_jobs_running", {
  description: "Jobs running on this node, by queue, as its last heartbeat counted them",
})
/** Sampled by the leader's `stats` round. */
export const jobsGauge = Metric.gauge("effect_jobs_jobs", {
  description: "Jobs stored, by queue and state, as the leader last counted them",
})

/**
 * A metric with its tags baked into the key. `Metric.tagged` re-resolves its registry entry
 * on every update; on the per-job path that lookup costs more than the job.
 */
const withTags = <Type extends MetricKeyType.MetricKeyType<any, any>>(
  key: MetricKey.MetricKey<Type>,
  tags: Record<string, string>,
) =>
  Metric.fromMetricKey(
    MetricKey.taggedWithLabels(
      key,
      Object.entries(tags).map(([k, v]) => MetricLabel.make(k, v)),
    ),
  )

/**
 * Builds a value once per key of up to three parts: the tagged metrics of each queue, type
 * and outcome seen. Fixed parameters keep the per-job lookup free of an array.
 */
const cached = <A>(build: (a: string, b: string, c: string) => A) => {
  const entries = new Map<string, A>()
  return (a: string, b: string, c = ""): A => {
    const key = `${a}\u0000${b}\u0000${c}`
    let entry = entries.get(key)
    if (entry === undefined) {
      entry = build(a, b, c)
      entries.set(key, entry)
    }
    return entry
  }
}

/**
 * What the observer needs of an attempt once its outcome is written: less than its job's
 * record, which would otherwise stay reachable, args and all, for as long as the write takes.
 */
export class FinishedAttempt {
  constructor(
    readonly id: JobId,
    readonly queue: string,
    readonly type: string,
    readonly attempt: number,
    readonly startedAt: number,
    readonly finishedAt: number,
  ) {}
}

/** The event an attempt's outcome publishes; none for a job handed back at shutdown. */
const finishedEvent = (job: FinishedAttempt, outcome: Outcome): JobEvent | undefined => {
  const { startedAt, finishedAt } = job
  const common = { id: job.id, queue: job.queue, type: job.type, at: new Date(finishedAt) }
  switch (outcome.kind) {
    case "completed":
      return JobEvent.Completed({ ...common, attempt: job.attempt, durationMillis: finishedAt - startedAt })
    case "retryable":
      return JobEvent.Failed({
        ...common,
        attempt: job.attempt,
        error: outcome.error.tag,
        message: outcome.error.message,
        retryAt: outcome.retryAt,
      })
    case "snoozed":
      return JobEvent.Snoozed({ ...common, attempt: job.attempt, until: outcome.until })
    case "cancelled":
      return JobEvent.Cancelled({ ...common, reason: outcome.error.message })
    case "discarded":
    case "deadLettered":
      return JobEvent.Discarded({ ...common, attempt: job.attempt, reason: outcome.error.message })
    case "released":
      return undefined
  }
}

export interface Observer {
  readonly events: Stream.Stream<JobEvent>
  readonly subscribe: Effect.Effect<Queue.Dequeue<JobEvent>, never, Scope.Scope>
  /** A job cancelled through the API rather than by its handler, here or on the node that ran it. */
  readonly cancelled: (job: Pick<JobRecord, "id" | "queue" | "type">, at: number) => void
  readonly inserted: (records: ReadonlyArray<JobRecord>) => void
  readonly started: (job: JobRecord, at: number) => void
  readonly finished: (attempt: FinishedAttempt, outcome: Outcome) => void
  /** Jobs this node rescued from a stopped node. */
  readonly rescued: (jobs: ReadonlyArray<Rescued>, at: number) => void
  /** How many jobs of each queue run on this node now; a queue left out runs none. */
  readonly sampleRunning: (queues: ReadonlyArray<{ readonly name: string; readonly running: number }>) => void
}

export const make = (capacity: number): Effect.Effect<Observer, never, Scope.Scope> =>
  Effect.gen(function* () {
    const pubsub = yield* Effect.acquireRelease(PubSub.sliding<JobEvent>(capacity), PubSub.shutdown)
    const publish = (event: JobEvent) => {
      pubsub.unsafeOffer(event)
    }
    // Building an event costs more than a no-op job's other bookkeeping, so it is skipped
    // while nobody listens.
    let subscribers = 0
    const subscribe = Effect.zipRight(
      Effect.acquireRelease(
        Effect.sync(() => subscribers++),
        () => Effect.sync(() => subscribers--),
      ),
      PubSub.subscribe(pubsub),
    )

    const finishedMetrics = cached((queue, type, outcome) => ({
      attempts: withTags(attemptsKey, { queue, type, outcome }),
      run: withTags(runKey, { queue, type }),
    }))
    const insertedMetric = cached((queue, type) => withTags(insertedKey, { queue, type }))
    const rescuedMetric = cached((queue, type, state) => withTags(rescuedKey, { queue, type, state }))
    const runningMetric = cached((queue) => Metric.tagged(runningGauge, "queue", queue))
    let sampled = new Set<string>()
    const startedMetrics = cached((queue, type) => ({
      started: withTags(startedKey, { queue, type }),
      wait: withTags(queueWaitKey, { queue }),
    }))

    return {
      events: Stream.unwrapScoped(Effect.map(subscribe, Stream.fromQueue)),
      subscribe,
      cancelled: (job, at) => {
        if (subscribers > 0)
          publish(
            JobEvent.Cancelled({
              id: job.id,
              queue: job.queue,
              type: job.type,
              at: new Date(at),
              reason: "cancelled on request",
            }),
          )
      },
      inserted: (records) => {
        const counts = new Map<string, { queue: string; type: string; count: number }>()
        for (const r of records) {
          if (subscribers > 0)
            publish(JobEvent.Inserted({ id: r.id, queue: r.queue, type: r.type, at: r.insertedAt }))
          const key = `${r.queue}\u0000${r.type}`
          const entry = counts.get(key)
          if (entry) entry.count++
          else counts.set(key, { queue: r.queue, type: r.type, count: 1 })
        }
        for (const { queue, type, count } of counts.values())
          insertedMetric(queue, type).unsafeUpdate(count, [])
      },
      started: (job, at) => {
        if (subscribers > 0)
          publish(
            JobEvent.Started({
              id: job.id,
              queue: job.queue,
              type: job.type,
              at: new Date(at),
              attempt: job.attempt,
            }),
          )
        const metrics = startedMetrics(job.queue, job.type)
        metrics.started.unsafeUpdate(1, [])
        metrics.wait.unsafeUpdate(Math.max(0, at - job.scheduledAt.getTime()), [])
      },
      rescued: (jobs, at) => {
        for (const job of jobs) {
          if (job.state !== "retryable" && job.state !== "discarded") continue
          rescuedMetric(job.queue, job.type, job.state).unsafeUpdate(1, [])
          if (subscribers === 0) continue
          publish(
            JobEvent.Rescued({
              id: job.id as JobId,
              queue: job.queue,
              type: job.type,
              at: new Date(at),
              attempt: job.attempt,
              state: job.state,
            }),
          )
        }
      },
      sampleRunning: (queues) => {
        const now = new Set<string>()
        for (const { name, running } of queues) {
          now.add(name)
          runningMetric(name, "").unsafeUpdate(running, [])
        }
        for (const name of sampled) if (!now.has(name)) runningMetric(name, "").unsafeUpdate(0, [])
        sampled = now
      },
      finished: (job, outcome) => {
        const { startedAt, finishedAt } = job
        const metrics = finishedMetrics(job.queue, job.type, outcome.kind)
        metrics.attempts.unsafeUpdate(1, [])
        metrics.run.unsafeUpdate(finishedAt - startedAt, [])
        if (subscribers === 0) return
        const event = finishedEvent(job, outcome)
        if (event !== undefined) publish(event)
      },
    }
  })
