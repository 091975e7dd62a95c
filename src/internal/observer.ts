/**
 * What the runtime tells the outside world about jobs: lifecycle events on a sliding PubSub
 * (publishing never waits for a slow subscriber) and metrics.
 */
import { Effect, Metric, MetricBoundaries, PubSub, type Scope, Stream } from "effect"
import { JobEvent } from "../JobEvent.js"
import type { JobRecord } from "../JobRecord.js"
import type { Outcome } from "./store.js"

export const attemptsTotal = Metric.counter("effect_jobs_attempts_total", {
  description: "Finished attempts, tagged by queue, type and outcome",
  incremental: true,
})
export const insertedTotal = Metric.counter("effect_jobs_inserted_total", {
  description: "Jobs inserted, tagged by queue and type",
  incremental: true,
})
const millisBoundaries = MetricBoundaries.exponential({ start: 1, factor: 2, count: 20 })
export const queueWaitMillis = Metric.histogram(
  "effect_jobs_queue_wait_ms",
  millisBoundaries,
  "Time from when a job was due to when an attempt started",
)
export const runMillis = Metric.histogram("effect_jobs_run_ms", millisBoundaries, "Time an attempt ran")

export interface Observer {
  readonly events: Stream.Stream<JobEvent>
  readonly inserted: (records: ReadonlyArray<JobRecord>) => Effect.Effect<void>
  readonly started: (job: JobRecord, at: number) => void
  readonly finished: (
    job: JobRecord,
    outcome: Outcome,
    startedAt: number,
    finishedAt: number,
  ) => Effect.Effect<void>
}

export const make = (capacity: number): Effect.Effect<Observer, never, Scope.Scope> =>
  Effect.gen(function* () {
    const pubsub = yield* Effect.acquireRelease(PubSub.sliding<JobEvent>(capacity), PubSub.shutdown)
    const publish = (event: JobEvent) => {
      pubsub.unsafeOffer(event)
    }

    // Tagged metrics are cached: building tags on every attempt would cost more than the count.
    const tagged = new Map<string, { attempts: typeof attemptsTotal; run: typeof runMillis }>()
    const metricsFor = (queue: string, type: string, outcome: string) => {
      const key = `${queue}\u0000${type}\u0000${outcome}`
      let entry = tagged.get(key)
      if (entry === undefined) {
        entry = {
          attempts: attemptsTotal.pipe(
            Metric.tagged("queue", queue),
            Metric.tagged("type", type),
            Metric.tagged("outcome", outcome),
          ),
          run: runMillis.pipe(Metric.tagged("queue", queue), Metric.tagged("type", type)),
        }
        tagged.set(key, entry)
      }
      return entry
    }

    return {
      events: Stream.fromPubSub(pubsub),
      inserted: (records) =>
        Effect.forEach(
          records,
          (r) => {
            publish(JobEvent.Inserted({ id: r.id, queue: r.queue, type: r.type, at: r.insertedAt }))
            return Metric.increment(
              Metric.tagged(Metric.tagged(insertedTotal, "queue", r.queue), "type", r.type),
            )
          },
          { discard: true },
        ),
      started: (job, at) => {
        publish(
          JobEvent.Started({
            id: job.id,
            queue: job.queue,
            type: job.type,
            at: new Date(at),
            attempt: job.attempt,
          }),
        )
      },
      finished: (job, outcome, startedAt, finishedAt) =>
        Effect.suspend(() => {
          const common = { id: job.id, queue: job.queue, type: job.type, at: new Date(finishedAt) }
          switch (outcome.kind) {
            case "completed":
              publish(
                JobEvent.Completed({
                  ...common,
                  attempt: job.attempt,
                  durationMillis: finishedAt - startedAt,
                }),
              )
              break
            case "retryable":
              publish(
                JobEvent.Failed({
                  ...common,
                  attempt: job.attempt,
                  error: outcome.error.tag,
                  message: outcome.error.message,
                  retryAt: outcome.retryAt,
                }),
              )
              break
            case "snoozed":
              publish(JobEvent.Snoozed({ ...common, attempt: job.attempt, until: outcome.until }))
              break
            case "cancelled":
              publish(JobEvent.Cancelled({ ...common, reason: outcome.error.message }))
              break
            case "discarded":
              publish(JobEvent.Discarded({ ...common, attempt: job.attempt, reason: outcome.error.message }))
              break
            case "released":
              break
          }
          const metrics = metricsFor(job.queue, job.type, outcome.kind)
          const waited = startedAt - job.scheduledAt.getTime()
          return Effect.all(
            [
              Metric.increment(metrics.attempts),
              Metric.update(metrics.run, finishedAt - startedAt),
              Metric.update(queueWaitMillis, Math.max(0, waited)),
            ],
            { discard: true },
          )
        }),
    }
  })
