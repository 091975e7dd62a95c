/**
 * Spans and metrics for every attempt.
 */
import { describe, expect, layer } from "@effect/vitest"
import { Effect, Metric, Schema, Tracer } from "effect"
import {
  attemptsTotal,
  jobsGauge,
  queueWaitMillis,
  runMillis,
  startedTotal,
} from "../../src/internal/observer.js"
import * as Job from "../../src/Job.js"
import { engines } from "../support/engines.js"
import { awaitState, eventually, startJobs } from "../support/jobs.js"

for (const engine of engines) {
  describe(`runtime on ${engine.name}`, () => {
    layer(engine.layer, { timeout: 60_000, excludeTestServices: true })((it) => {
      it.scoped("traces every attempt and counts outcomes, queue wait and run time in metrics", () =>
        Effect.gen(function* () {
          const native = yield* Effect.tracer
          const spans: Array<Tracer.Span> = []
          const recording = Tracer.make({
            span: (...args) => {
              const span = native.span(...args)
              spans.push(span)
              return span
            },
            context: native.context,
          })
          yield* Effect.gen(function* () {
            const type = `metered_${engine.name}`
            const Metered = Job.make(type, { args: Schema.Struct({ fail: Schema.Boolean }), maxAttempts: 1 })
            const metered = Metered.handler(({ args }) => (args.fail ? Effect.fail("no") : Effect.void))
            const jobs = yield* startJobs({ handlers: [metered], heartbeatInterval: "200 millis" })
            const ok = yield* jobs.insert(Metered, { fail: false })
            const bad = yield* jobs.insert(Metered, { fail: true })
            yield* Effect.flip(jobs.insert(Metered, { fail: false }, { priority: 1.5 }))
            yield* awaitState(jobs, ok.id, "completed")
            yield* awaitState(jobs, bad.id, "discarded")
            const count = (outcome: string) =>
              Metric.value(
                attemptsTotal.pipe(
                  Metric.tagged("queue", "default"),
                  Metric.tagged("type", type),
                  Metric.tagged("outcome", outcome),
                ),
              ).pipe(Effect.map((state) => state.count))
            expect(yield* count("completed")).toBe(1)
            expect(yield* count("discarded")).toBe(1)
            const runs = yield* Metric.value(
              runMillis.pipe(Metric.tagged("queue", "default"), Metric.tagged("type", type)),
            )
            expect(runs.count).toBe(2)
            expect(
              (yield* Metric.value(queueWaitMillis.pipe(Metric.tagged("queue", "default")))).count,
            ).toBeGreaterThanOrEqual(2)
            const started = yield* Metric.value(
              startedTotal.pipe(Metric.tagged("queue", "default"), Metric.tagged("type", type)),
            )
            expect(started.count).toBe(2)
            // The leader samples the stored jobs by queue and state (this schema's only).
            const stored = (state: string) =>
              Metric.value(jobsGauge.pipe(Metric.tagged("queue", "default"), Metric.tagged("state", state)))
            yield* eventually(
              Effect.gen(function* () {
                expect((yield* stored("completed")).value).toBe(1)
                expect((yield* stored("discarded")).value).toBe(1)
              }),
            )
          }).pipe(Effect.withTracer(recording))
          const performed = spans.filter((span) => span.name === "process default")
          expect(performed).toHaveLength(2)
          expect(Object.fromEntries(performed[0]!.attributes)).toMatchObject({
            "job.queue": "default",
            "job.type": `metered_${engine.name}`,
            "job.attempt": 1,
          })
          const inserts = spans.filter((span) => span.name === "send default")
          expect(inserts).toHaveLength(3)
          // The refused insert's span ends failed, with no stack trace: the frame one would
          // record is the runtime's own, never the app's.
          const refused = inserts.find(
            (span) => span.status._tag === "Ended" && span.status.exit._tag === "Failure",
          )
          expect(refused).toBeDefined()
          expect(refused!.attributes.has("code.stacktrace")).toBe(false)
        }),
      )

      it.scoped("skips the attempt span under Effect's built-in tracer unless tracing is asked for", () =>
        Effect.gen(function* () {
          const seen: Array<string> = []
          const Spanned = Job.make("spanned", { args: Schema.Struct({}) })
          const spanned = Spanned.handler(() =>
            Effect.currentSpan.pipe(
              Effect.match({
                onFailure: () => seen.push("none"),
                onSuccess: (span) => seen.push(span.name),
              }),
            ),
          )
          const quiet = yield* startJobs({ handlers: [spanned] })
          yield* awaitState(quiet, (yield* quiet.insert(Spanned, {})).id, "completed")
          const traced = yield* startJobs({ handlers: [spanned], tracing: true })
          yield* awaitState(traced, (yield* traced.insert(Spanned, {})).id, "completed")
          expect(seen).toEqual(["none", "process default"])
        }),
      )
    })
  })
}
