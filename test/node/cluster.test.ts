/**
 * Several nodes on one database: one leader, and queue control and cancels that reach
 * every node. Each node is a full runtime; they share the engine and the schema.
 */
import { SqlClient } from "@effect/sql/SqlClient"
import { describe, expect, layer } from "@effect/vitest"
import { Deferred, Effect, Schema, Scope } from "effect"
import * as Job from "../../src/Job.js"
import type * as Jobs from "../../src/Jobs.js"
import { dropSchema, engines, freshSchema } from "../support/engines.js"
import { awaitState, eventually, interruptibleJob, startJobs } from "../support/jobs.js"

const Echo = Job.make("echo", { args: Schema.Struct({ text: Schema.String }) })
const echo = Echo.handler(() => Effect.void)

const cluster =
  (schema: string) =>
  (options: Jobs.Options<ReadonlyArray<Job.Handler<any>>> = {}) =>
    startJobs({ schema, heartbeatInterval: "100 millis", handlers: [echo], ...options })

const waitFor = <A, E, R>(check: Effect.Effect<A, E, R>, predicate: (a: A) => boolean) =>
  eventually(Effect.flatMap(check, (a) => (predicate(a) ? Effect.succeed(a) : Effect.fail("not yet"))))

for (const engine of engines) {
  describe(`cluster on ${engine.name}`, () => {
    layer(engine.layer, { timeout: 60_000, excludeTestServices: true })((it) => {
      const sharedSchema = Effect.gen(function* () {
        const sql = yield* SqlClient
        const schema = freshSchema()
        yield* Effect.addFinalizer(() => dropSchema(sql, schema))
        return cluster(schema)
      })

      it.scoped("elects exactly one leader, and another takes over when it stops", () =>
        Effect.gen(function* () {
          const node = yield* sharedSchema
          const firstScope = yield* Scope.make()
          // Terms long enough that a busy machine still renews in time (a term is 1.5 intervals).
          const first = yield* node({ heartbeatInterval: "1 second" }).pipe(Scope.extend(firstScope))
          const second = yield* node({ heartbeatInterval: "1 second" })
          const leader = yield* waitFor(first.leader, (l) => l !== null)
          expect(leader).toBe(first.node)
          // Still one leader a few terms later.
          yield* Effect.sleep("3500 millis")
          expect(yield* second.leader).toBe(first.node)
          yield* Scope.close(firstScope, { _tag: "Success", value: undefined } as never)
          yield* waitFor(second.leader, (l) => l === second.node)
          expect((yield* second.nodes).map((n) => n.id)).toEqual([second.node])
        }),
      )

      it.scoped("pause and resume reach every node, and a node starting later starts paused", () =>
        Effect.gen(function* () {
          const node = yield* sharedSchema
          const a = yield* node()
          const b = yield* node()
          yield* a.pauseQueue("default")
          yield* waitFor(b.queues, (qs) => qs[0]!.paused)
          const c = yield* node()
          expect((yield* c.queues)[0]!.paused).toBe(true)
          const job = yield* a.insert(Echo, { text: "waits" })
          yield* Effect.sleep("300 millis")
          expect((yield* a.get(job.id)).state).toBe("available")
          yield* b.resumeQueue("default")
          yield* awaitState(a, job.id, "completed")
          for (const n of [a, b, c]) yield* waitFor(n.queues, (qs) => !qs[0]!.paused)
          // localOnly stays local.
          yield* a.pauseQueue("default", { localOnly: true })
          expect((yield* a.queues)[0]!.paused).toBe(true)
          yield* Effect.sleep("200 millis")
          expect((yield* b.queues)[0]!.paused).toBe(false)
        }),
      )

      it.scoped("scale reaches every node running the queue", () =>
        Effect.gen(function* () {
          const node = yield* sharedSchema
          const a = yield* node({ queues: { default: 2 } })
          const b = yield* node({ queues: { default: 2 } })
          yield* a.scaleQueue("default", 7)
          yield* waitFor(b.queues, (qs) => qs[0]!.limit === 7)
          expect((yield* a.queues)[0]!.limit).toBe(7)
        }),
      )

      it.scoped("cancel interrupts an executing job on whichever node runs it", () =>
        Effect.gen(function* () {
          const node = yield* sharedSchema
          const { definition: Long, handler: long, started, interrupted } = yield* interruptibleJob("long")
          const runner = yield* node({ handlers: [long] })
          const admin = yield* node({ handlers: [long], queues: {} })
          const job = yield* admin.insert(Long, {})
          yield* Deferred.await(started)
          expect((yield* admin.cancel(job.id)).state).toBe("cancelled")
          yield* Deferred.await(interrupted)
          yield* runner.drain("default")
          expect((yield* runner.get(job.id)).state).toBe("cancelled")
        }),
      )

      it.scoped("a global limit holds across nodes however much each could run", () =>
        Effect.gen(function* () {
          const node = yield* sharedSchema
          let running = 0
          let most = 0
          const Tracked = Job.make("tracked", { args: Schema.Struct({ n: Schema.Number }) })
          const tracked = Tracked.handler(() =>
            Effect.acquireUseRelease(
              Effect.sync(() => {
                running++
                most = Math.max(most, running)
              }),
              () => Effect.sleep("50 millis"),
              () => Effect.sync(() => running--),
            ),
          )
          const limited = { queues: { default: { concurrency: 5, globalLimit: 2 } }, handlers: [tracked] }
          const a = yield* node(limited)
          yield* node(limited)
          yield* a.insertMany(
            Tracked,
            Array.from({ length: 12 }, (_, n) => ({ n })),
          )
          yield* waitFor(a.queueInfo("default"), (info) => info.states.completed.count === 12)
          expect(most).toBe(2)
        }),
      )

      it.scoped("a rate limit spaces starts across nodes", () =>
        Effect.gen(function* () {
          const node = yield* sharedSchema
          const starts: Array<number> = []
          const Counted = Job.make("counted", { args: Schema.Struct({ n: Schema.Number }) })
          const counted = Counted.handler(() => Effect.sync(() => starts.push(Date.now())))
          const limited = {
            queues: { default: { concurrency: 5, rateLimit: { limit: 3, period: "1 second" as const } } },
            handlers: [counted],
          }
          const a = yield* node(limited)
          yield* node(limited)
          const begin = Date.now()
          yield* a.insertMany(
            Counted,
            Array.from({ length: 6 }, (_, n) => ({ n })),
          )
          yield* waitFor(a.queueInfo("default"), (info) => info.states.completed.count === 6)
          const early = starts.filter((t) => t - begin < 700).length
          expect(early).toBe(3)
          expect(Math.max(...starts) - begin).toBeGreaterThanOrEqual(900)
        }),
      )

      it.scoped("a rate limit counts every attempt, a retry's included", () =>
        Effect.gen(function* () {
          const node = yield* sharedSchema
          const starts: Array<{ readonly n: number; readonly attempt: number; readonly at: number }> = []
          const FailsOnce = Job.make("fails-once", {
            args: Schema.Struct({ n: Schema.Number }),
            backoff: "50 millis",
          })
          const failsOnce = FailsOnce.handler(({ args, job }) =>
            Effect.suspend(() => {
              starts.push({ n: args.n, attempt: job.attempt, at: Date.now() })
              return args.n === 1 && job.attempt === 1 ? Effect.fail("once") : Effect.void
            }),
          )
          const a = yield* node({
            queues: { default: { concurrency: 5, rateLimit: { limit: 2, period: "2 seconds" } } },
            handlers: [failsOnce],
          })
          const first = yield* a.insert(FailsOnce, { n: 1 })
          yield* awaitState(a, first.id, "completed")
          // Both of the first job's attempts started in this period: the limit is used up.
          const second = yield* a.insert(FailsOnce, { n: 2 })
          yield* awaitState(a, second.id, "completed")
          expect(starts.map(({ n, attempt }) => [n, attempt])).toEqual([
            [1, 1],
            [1, 2],
            [2, 1],
          ])
          expect(starts[2]!.at - starts[0]!.at).toBeGreaterThanOrEqual(1900)
        }),
      )

      it.scoped(
        "the queue listing shows every node's queues and handlers; orphans and deletion follow the live nodes",
        () =>
          Effect.gen(function* () {
            const node = yield* sharedSchema
            const Report = Job.make("report", { args: Schema.Struct({}), queue: "reports" })
            const firstScope = yield* Scope.make()
            const a = yield* node({ queues: { default: 2, reports: 1 }, handlers: [echo] }).pipe(
              Scope.extend(firstScope),
            )
            const b = yield* node({ queues: { default: 5 }, handlers: [Report.handler(() => Effect.void)] })
            yield* b.pauseQueue("reports", { localOnly: true }).pipe(Effect.flip)
            const listed = yield* waitFor(
              b.listQueues,
              (qs) => qs.find((q) => q.name === "default")?.nodes.length === 2,
            )
            const byName = Object.fromEntries(listed.map((q) => [q.name, q]))
            expect(byName.default!.nodes.map((n) => [n.node, n.concurrency])).toEqual([
              [a.node, 2],
              [b.node, 5],
            ])
            expect(byName.reports!.nodes.map((n) => n.node)).toEqual([a.node])
            // Handled on b, whose queues do not include it; a runs the queue but has no handler.
            yield* a.insert(Report, {}, { scheduleIn: "1 hour" })
            expect((yield* b.orphans).types).toEqual([])
            expect((yield* b.nodes).map((n) => n.handlers)).toEqual([["echo"], ["report"]])
            // b cannot delete a queue a runs; once a stops, its queue is b's to delete.
            const refused = yield* Effect.flip(b.deleteQueue("reports"))
            expect(refused).toMatchObject({ _tag: "QueueInUse", nodes: [a.node] })
            yield* Scope.close(firstScope, { _tag: "Success", value: undefined } as never)
            yield* b.insert(Echo, { text: "nobody runs me" }, { queue: "reports" })
            expect((yield* b.orphans).queues).toEqual([{ queue: "reports", available: 1 }])
            expect(yield* b.deleteQueue("reports", { jobs: true })).toBe(2)
            expect((yield* b.listQueues).map((q) => [q.name, q.nodes.map((n) => n.node)])).toEqual([
              ["default", [b.node]],
            ])
          }),
      )
    })
  })
}
