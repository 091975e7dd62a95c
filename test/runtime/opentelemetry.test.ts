/**
 * One trace from the code that inserts a job to the attempts that run it, recorded by
 * OpenTelemetry's in-memory exporter.
 */
import * as NodeSdk from "@effect/opentelemetry/NodeSdk"
import { SqlClient } from "@effect/sql/SqlClient"
import { describe, expect, layer } from "@effect/vitest"
import { SpanKind, SpanStatusCode } from "@opentelemetry/api"
import { InMemorySpanExporter, type ReadableSpan, SimpleSpanProcessor } from "@opentelemetry/sdk-trace-base"
import { Effect, Layer, Logger, LogLevel, Schema } from "effect"
import * as Job from "../../src/Job.js"
import type { JobSnooze } from "../../src/JobError.js"
import { engines } from "../support/engines.js"
import { awaitState, eventually, realSleep, startJobs } from "../support/jobs.js"

const Greet = Job.make("otel_greet", {
  args: Schema.Struct({ outcome: Schema.Literal("ok", "fail", "snooze") }),
  maxAttempts: 1,
})
let snoozed = false
const greet = Greet.handler(({ args }): Effect.Effect<void, JobSnooze | string> => {
  if (args.outcome === "fail") return Effect.fail("no greeting today")
  if (args.outcome === "snooze" && !snoozed) {
    snoozed = true
    return Job.snooze("10 millis")
  }
  return Effect.void
})

const spansIn =
  (exporter: InMemorySpanExporter) =>
  (name: string, id?: number): ReadonlyArray<ReadableSpan> =>
    exporter
      .getFinishedSpans()
      .filter(
        (span) =>
          span.name === name && (id === undefined || span.attributes["messaging.message.id"] === String(id)),
      )

for (const engine of engines) {
  describe(`OpenTelemetry on ${engine.name}`, () => {
    // An SDK's processor ends with its layer: each engine's layer gets its own.
    const exporter = new InMemorySpanExporter()
    const spansNamed = spansIn(exporter)
    const otel = NodeSdk.layer(() => ({
      resource: { serviceName: "effect-jobs-test" },
      spanProcessor: new SimpleSpanProcessor(exporter),
    }))
    layer(Layer.merge(engine.layer, otel), { timeout: 60_000, excludeTestServices: true })((it) => {
      it.scoped(
        "links each attempt to the insert's span, with messaging attributes and the outcome as status",
        () =>
          Effect.gen(function* () {
            exporter.reset()
            const jobs = yield* startJobs({ handlers: [greet] })
            const { ok, failed } = yield* Effect.all({
              ok: jobs.insert(Greet, { outcome: "ok" }),
              failed: jobs.insert(Greet, { outcome: "fail" }),
            }).pipe(Effect.withSpan("POST /greetings"))
            expect(ok.meta.traceparent).toMatch(/^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/)
            yield* awaitState(jobs, ok.id, "completed")
            yield* awaitState(jobs, failed.id, "discarded")
            const request = spansNamed("POST /greetings")[0]!
            const send = yield* eventually(Effect.sync(() => spansNamed("send default", ok.id)[0]!))
            const process = yield* eventually(Effect.sync(() => spansNamed("process default", ok.id)[0]!))
            // The insert belongs to the request's trace; the attempt starts a trace of its own, linked to it.
            expect(send.spanContext().traceId).toBe(request.spanContext().traceId)
            expect(send.kind).toBe(SpanKind.PRODUCER)
            expect(ok.meta.traceparent).toBe(
              `00-${send.spanContext().traceId}-${send.spanContext().spanId}-01`,
            )
            expect(process.kind).toBe(SpanKind.CONSUMER)
            expect(process.spanContext().traceId).not.toBe(request.spanContext().traceId)
            expect(process.links.map((link) => link.context.spanId)).toEqual([send.spanContext().spanId])
            expect(process.attributes).toMatchObject({
              "messaging.system": "effect_jobs",
              "messaging.operation.type": "process",
              "messaging.operation.name": "process",
              "messaging.destination.name": "default",
              "messaging.message.id": String(ok.id),
              "job.type": "otel_greet",
              "job.attempt": 1,
              "job.priority": 0,
              "job.outcome": "completed",
            })
            expect(process.attributes["job.queue_time_ms"]).toBeTypeOf("number")
            expect(process.status.code).toBe(SpanStatusCode.OK)
            const failing = yield* eventually(Effect.sync(() => spansNamed("process default", failed.id)[0]!))
            expect(failing.status.code).toBe(SpanStatusCode.ERROR)
            expect(failing.attributes["job.outcome"]).toBe("failed")
          }),
      )

      it.scoped(
        "puts the attempt in the insert's trace with traceLinking parent; one send span per insertMany",
        () =>
          Effect.gen(function* () {
            exporter.reset()
            snoozed = false
            const jobs = yield* startJobs({ handlers: [greet], traceLinking: "parent" })
            const [first, second] = yield* jobs.insertMany(Greet, [{ outcome: "snooze" }, { outcome: "ok" }])
            yield* awaitState(jobs, first!.id, "completed")
            yield* awaitState(jobs, second!.id, "completed")
            const sends = spansNamed("send default")
            expect(sends).toHaveLength(1)
            expect(sends[0]!.attributes["messaging.batch.message_count"]).toBe(2)
            const attempts = yield* eventually(
              Effect.sync(() => {
                const found = spansNamed("process default", first!.id)
                if (found.length < 2) throw new Error("not yet")
                return found
              }),
            )
            for (const attempt of attempts) {
              expect(attempt.spanContext().traceId).toBe(sends[0]!.spanContext().traceId)
              expect(attempt.parentSpanContext?.spanId).toBe(sends[0]!.spanContext().spanId)
              expect(attempt.links).toEqual([])
            }
            // Snoozing is no error: the snoozed attempt ends OK, and says it snoozed.
            const snoozedAttempt = attempts.find((span) => span.attributes["job.outcome"] === "snoozed")
            expect(snoozedAttempt?.status.code).toBe(SpanStatusCode.OK)
          }),
      )

      it.scoped("records no spans of start-up or maintenance rounds unless the log level is Debug", () =>
        Effect.gen(function* () {
          exporter.reset()
          yield* startJobs({ handlers: [greet] })
          yield* realSleep(500)
          const names = new Set(exporter.getFinishedSpans().map((span) => span.name))
          expect(names.has("effect-jobs.migrate")).toBe(false)
          expect([...names].filter((name) => name.startsWith("effect-jobs."))).toEqual([])
          exporter.reset()
          yield* startJobs({ handlers: [greet] }).pipe(Logger.withMinimumLogLevel(LogLevel.Debug))
          yield* realSleep(500)
          const debugNames = new Set(exporter.getFinishedSpans().map((span) => span.name))
          expect(debugNames.has("effect-jobs.migrate")).toBe(true)
          expect(debugNames.has("effect-jobs.stager")).toBe(true)
        }),
      )

      it.scoped("records no root sql.execute spans of polls, heartbeats, claims or completions", () =>
        Effect.gen(function* () {
          exporter.reset()
          const jobs = yield* startJobs({
            handlers: [greet],
            heartbeatInterval: "100 millis",
            pingInterval: "100 millis",
          })
          const sql = yield* SqlClient
          const job = yield* jobs.insert(Greet, { outcome: "ok" })
          yield* sql.unsafe("SELECT 1").pipe(Effect.withSpan("app query"))
          yield* awaitState(jobs, job.id, "completed")
          yield* realSleep(600)
          const statements = exporter.getFinishedSpans().filter((span) => span.name === "sql.execute")
          const roots = statements.filter((span) => span.parentSpanContext === undefined)
          expect(roots.map((span) => span.attributes["db.statement"] ?? span.attributes)).toEqual([])
          // The app's own statements are still traced, in the app's spans.
          const query = spansNamed("app query")[0]!
          expect(
            statements.some((span) => span.parentSpanContext?.spanId === query.spanContext().spanId),
          ).toBe(true)
        }),
      )

      it.scoped("neither links nor parents the attempt with traceLinking none", () =>
        Effect.gen(function* () {
          exporter.reset()
          const jobs = yield* startJobs({ handlers: [greet], traceLinking: "none" })
          const job = yield* jobs.insert(Greet, { outcome: "ok" })
          yield* awaitState(jobs, job.id, "completed")
          const attempt = yield* eventually(Effect.sync(() => spansNamed("process default", job.id)[0]!))
          expect(attempt.links).toEqual([])
          expect(attempt.parentSpanContext).toBeUndefined()
          expect(attempt.spanContext().traceId).not.toBe(spansNamed("send default")[0]!.spanContext().traceId)
        }),
      )
    })
  })
}
