/**
 * Hooks: middleware around each attempt and lifecycle callbacks, on queues and on definitions.
 */
import type { SqlClient } from "@effect/sql/SqlClient"
import { describe, expect, layer } from "@effect/vitest"
import { Context, Effect, FiberRef, HashSet, Layer, Logger, Metric, Schema } from "effect"
import * as Hook from "../../src/Hook.js"
import { hookFailuresTotal } from "../../src/internal/hookCallbacks.js"
import * as Job from "../../src/Job.js"
import * as Jobs from "../../src/Jobs.js"
import type { Listener } from "../../src/Listener.js"
import { engines } from "../support/engines.js"
import { awaitState, eventually, NotYet, startJobs } from "../support/jobs.js"
import { orphan } from "./fixtures.js"

class Tenant extends Context.Tag("test/Tenant")<Tenant, string>() {}
class Audit extends Context.Tag("test/Audit")<Audit, Array<string>>() {}
class Refused extends Schema.TaggedError<Refused>()("Refused", { message: Schema.String }) {}

/** Records every log line with its annotations, for the rest of the test's scope. */
const captureLogs = Effect.gen(function* () {
  const lines: Array<{ message: string; level: string; annotations: Record<string, unknown> }> = []
  const capture = Logger.make(({ message, logLevel, annotations }) => {
    lines.push({
      message: Array.isArray(message) ? message.map(String).join(" ") : String(message),
      level: logLevel.label,
      annotations: Object.fromEntries(annotations),
    })
  })
  yield* Effect.locallyScopedWith(FiberRef.currentLoggers, HashSet.add(capture))
  return lines
})

const seen = (log: ReadonlyArray<string>, entries: ReadonlyArray<string>) =>
  Effect.suspend(() =>
    entries.every((entry) => log.includes(entry))
      ? Effect.void
      : Effect.fail(new NotYet(`still waiting for ${entries.filter((e) => !log.includes(e)).join(", ")}`)),
  )

for (const engine of engines) {
  describe(`hooks on ${engine.name}`, () => {
    layer(engine.layer, { timeout: 60_000, excludeTestServices: true })((it) => {
      it.scoped(
        "middleware provides a service the handler uses and annotates its logs, queue hooks outermost",
        () =>
          Effect.gen(function* () {
            const logs = yield* captureLogs
            const order: Array<string> = []
            const step = (name: string) =>
              Hook.make({
                name,
                around: (attempt) =>
                  Effect.sync(() => order.push(`${name} in`)).pipe(
                    Effect.zipRight(attempt),
                    Effect.tap(() => order.push(`${name} out`)),
                  ),
              })
            const Greet = Job.make("hooks_greet", {
              args: Schema.Struct({ name: Schema.String }),
              result: Schema.String,
              hooks: [
                step("definition 1"),
                Hook.provideService("tenant", Tenant, Effect.succeed("acme")),
                step("definition 2"),
              ],
            })
            const greet = Greet.handler(({ args }) =>
              Effect.gen(function* () {
                order.push("handler")
                const tenant = yield* Tenant
                yield* Effect.log(`greeting ${args.name}`)
                return `hello ${args.name} of ${tenant}`
              }),
            )
            const annotate = Hook.make({
              name: "annotate",
              around: (attempt, job) => Effect.annotateLogs(attempt, { requestId: `req-${job.id}` }),
            })
            const jobs = yield* startJobs({
              handlers: [greet],
              queues: { default: { concurrency: 2, hooks: [step("queue 1"), annotate, step("queue 2")] } },
            })
            const job = yield* jobs.insert(Greet, { name: "ada" })
            const done = yield* awaitState(jobs, job.id, "completed")
            expect(done.result).toBe("hello ada of acme")
            expect(order).toEqual([
              "queue 1 in",
              "queue 2 in",
              "definition 1 in",
              "definition 2 in",
              "handler",
              "definition 2 out",
              "definition 1 out",
              "queue 2 out",
              "queue 1 out",
            ])
            const line = logs.find((l) => l.message === "greeting ada")
            expect(line?.annotations).toMatchObject({ requestId: `req-${job.id}` })
          }),
      )

      it.scoped("middleware that refuses fails the attempt with its error, and the handler never runs", () =>
        Effect.gen(function* () {
          let ran = 0
          const Guarded = Job.make("hooks_guarded", {
            args: Schema.Struct({ blocked: Schema.Boolean }),
            maxAttempts: 1,
          })
          const guarded = Guarded.handler(() => Effect.sync(() => ran++))
          const guard = Hook.make({
            name: "guard",
            around: (attempt, job) =>
              (job.args as { blocked: boolean }).blocked
                ? Effect.fail(new Refused({ message: "blocked by policy" }))
                : attempt,
          })
          const jobs = yield* startJobs({
            handlers: [guarded],
            queues: { default: { concurrency: 1, hooks: [guard] } },
          })
          const blocked = yield* jobs.insert(Guarded, { blocked: true })
          const allowed = yield* jobs.insert(Guarded, { blocked: false })
          const refused = yield* awaitState(jobs, blocked.id, "discarded")
          expect(refused.errors.map((e) => [e.tag, e.message])).toEqual([["Refused", "blocked by policy"]])
          yield* awaitState(jobs, allowed.id, "completed")
          expect(ran).toBe(1)
        }),
      )

      it.scoped("lifecycle callbacks hear every kind of event, a cancel made on another node included", () =>
        Effect.gen(function* () {
          const heard: Array<string> = []
          const elsewhere: Array<string> = []
          const listen = (log: Array<string>) =>
            Hook.make({
              name: "listen",
              inserted: (e) => Effect.sync(() => log.push(`${e._tag} ${e.id}`)),
              started: (e) => Effect.sync(() => log.push(`${e._tag} ${e.id} ${e.attempt}`)),
              completed: (e) => Effect.sync(() => log.push(`${e._tag} ${e.id}`)),
              failed: (e) => Effect.sync(() => log.push(`${e._tag} ${e.id}`)),
              snoozed: (e) => Effect.sync(() => log.push(`${e._tag} ${e.id}`)),
              cancelled: (e) => Effect.sync(() => log.push(`${e._tag} ${e.id}`)),
              discarded: (e) => Effect.sync(() => log.push(`${e._tag} ${e.id}`)),
              rescued: (e) => Effect.sync(() => log.push(`${e._tag} ${e.id} ${e.state}`)),
            })
          const Action = Schema.Literal("ok", "failOnce", "cancel", "discard", "block")
          const definition = (log: Array<string>) =>
            Job.make("hooks_lifecycle", {
              args: Schema.Struct({ action: Action }),
              backoff: "10 millis",
              hooks: [listen(log)],
            })
          const Lifecycle = definition(heard)
          const handle = (d: typeof Lifecycle) =>
            d.handler(({ args, job }): Effect.Effect<void, unknown> => {
              switch (args.action) {
                case "failOnce":
                  return job.attempt === 1 ? Effect.fail("once") : Effect.void
                case "cancel":
                  return Job.cancel("not wanted")
                case "discard":
                  return Job.discard("useless")
                case "block":
                  return Effect.never
                default:
                  return Effect.void
              }
            })
          // A snooze: its handler snoozes on the first run only (a snoozed job keeps its attempt).
          const Snoozer = Job.make("hooks_snoozer", { args: Schema.Struct({}), hooks: [listen(heard)] })
          let snoozes = 0
          const snoozer = Snoozer.handler(() => (snoozes++ === 0 ? Job.snooze("10 millis") : Effect.void))
          const quick = { heartbeatInterval: "100 millis", nodeTimeout: "300 millis" } as const
          const jobs = yield* startJobs({
            handlers: [handle(Lifecycle), snoozer],
            queues: { default: 5 },
            ...quick,
          })
          const ok = yield* jobs.insert(Lifecycle, { action: "ok" })
          const failOnce = yield* jobs.insert(Lifecycle, { action: "failOnce" })
          const cancel = yield* jobs.insert(Lifecycle, { action: "cancel" })
          const discard = yield* jobs.insert(Lifecycle, { action: "discard" })
          const block = yield* jobs.insert(Lifecycle, { action: "block" })
          yield* eventually(
            seen(heard, [
              `Completed ${ok.id}`,
              `Failed ${failOnce.id}`,
              `Completed ${failOnce.id}`,
              `Cancelled ${cancel.id}`,
              `Discarded ${discard.id}`,
              `Started ${block.id} 1`,
            ]),
          )
          expect(heard.filter((e) => e.split(" ")[1] === String(ok.id))).toEqual([
            `Inserted ${ok.id}`,
            `Started ${ok.id} 1`,
            `Completed ${ok.id}`,
          ])

          const snoozed = yield* jobs.insert(Snoozer, {})
          yield* eventually(seen(heard, [`Snoozed ${snoozed.id}`, `Completed ${snoozed.id}`]))

          // A cancel made on a node that runs no queue: that node's hooks hear it.
          const canceller = yield* startJobs({
            schema: jobs.schema,
            handlers: [handle(definition(elsewhere))],
            queues: {},
            ...quick,
          })
          yield* canceller.cancel(block.id)
          yield* eventually(seen(elsewhere, [`Cancelled ${block.id}`]))

          // A rescue: the leader, whichever of the two nodes it is, gives back a job a vanished
          // node left executing, and its hooks hear of it.
          const orphaned = yield* jobs.insert(Lifecycle, { action: "ok" }, { queue: "nobody" })
          yield* orphan(jobs.schema, "nobody", "ghost-node", "00000000-0000-4000-8000-0000000000ab")
          yield* eventually(
            Effect.suspend(() =>
              heard.includes(`Rescued ${orphaned.id} retryable`) ||
              elsewhere.includes(`Rescued ${orphaned.id} retryable`)
                ? Effect.void
                : Effect.fail(new NotYet("no rescue heard yet")),
            ),
          )
        }),
      )

      it.scoped("a failing callback is logged and counted, and the job's outcome stands", () =>
        Effect.gen(function* () {
          const logs = yield* captureLogs
          const after: Array<string> = []
          const Plain = Job.make("hooks_plain", {
            args: Schema.Struct({}),
            hooks: [
              Hook.make({
                name: "after",
                completed: (e) => Effect.sync(() => after.push(`definition ${e.id}`)),
              }),
            ],
          })
          const plain = Plain.handler(() => Effect.succeed(undefined))
          const failing = Hook.make({
            name: `failing_${engine.name}`,
            completed: () => Effect.fail("hook broke"),
          })
          const throwing = Hook.make({
            name: `throwing_${engine.name}`,
            completed: (): Effect.Effect<void> => {
              throw new Error("hook threw")
            },
          })
          const queueAfter = Hook.make({
            name: "queue after",
            completed: (e) => Effect.sync(() => after.push(`queue ${e.id}`)),
          })
          const jobs = yield* startJobs({
            handlers: [plain],
            queues: { default: { concurrency: 1, hooks: [failing, throwing, queueAfter] } },
          })
          const job = yield* jobs.insert(Plain, {})
          expect((yield* awaitState(jobs, job.id, "completed")).errors).toEqual([])
          // Later hooks still run, the queue's before the definition's.
          yield* eventually(seen(after, [`definition ${job.id}`]))
          expect(after).toEqual([`queue ${job.id}`, `definition ${job.id}`])
          const failures = (hook: string) =>
            Metric.value(Metric.tagged(Metric.tagged(hookFailuresTotal, "hook", hook), "event", "Completed"))
          expect((yield* failures(`failing_${engine.name}`)).count).toBe(1)
          expect((yield* failures(`throwing_${engine.name}`)).count).toBe(1)
          const warnings = logs.filter(
            (l) => l.level === "WARN" && l.message.includes("the job is not affected"),
          )
          expect(warnings.map((l) => l.annotations.hook).sort()).toEqual([
            `failing_${engine.name}`,
            `throwing_${engine.name}`,
          ])
          expect((yield* jobs.get(job.id)).state).toBe("completed")
        }),
      )

      it.scoped("a queue with hooks that are not hooks is refused with a clear error", () =>
        Effect.gen(function* () {
          const jobs = yield* startJobs({ queues: {} })
          const error = yield* Effect.flip(
            jobs.startQueue("hooked", { concurrency: 1, hooks: [{ name: "" } as Hook.Hook] }),
          )
          expect(error._tag).toBe("InvalidJobOptions")
          expect(error.message).toContain("hooks")
          expect((yield* jobs.queues).map((q) => q.name)).toEqual([])
        }),
      )
    })
  })
}

// A hook's requirements become the layer's, and what a definition's middleware provides is
// taken off its handler's.
const Needs = Job.make("hooks_types", {
  args: Schema.Struct({}),
  hooks: [
    Hook.provideService("tenant", Tenant, Effect.succeed("acme")),
    Hook.make({
      name: "audit",
      completed: () => Effect.flatMap(Audit, (log) => Effect.sync(() => log.push("done"))),
    }),
  ],
})
const needs = Needs.handler(() => Tenant)
class Metrics extends Context.Tag("test/Metrics")<Metrics, { readonly count: () => void }>() {}
const queueHook = Hook.make({ name: "metrics", started: () => Effect.map(Metrics, (m) => m.count()) })
export const typed: Layer.Layer<Jobs.Provided, Jobs.LayerError, SqlClient | Listener | Audit | Metrics> =
  Jobs.layer({
    handlers: [needs],
    queues: { default: { concurrency: 1, hooks: [queueHook] } },
  })
// @ts-expect-error Audit and Metrics are required
export const untyped: Layer.Layer<Jobs.Provided, Jobs.LayerError, SqlClient | Listener> = typed
void Layer.empty
