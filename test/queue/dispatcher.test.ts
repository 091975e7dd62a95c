/**
 * The dispatcher's own edge cases, driven through a real store with a fault injected.
 */

import { randomUUID } from "node:crypto"
import { SqlClient } from "@effect/sql/SqlClient"
import { SqlError } from "@effect/sql/SqlError"
import { describe, expect, layer } from "@effect/vitest"
import { Deferred, Duration, Effect, Fiber, Logger, LogLevel, Queue, Schedule, Schema } from "effect"
import * as Backoff from "../../src/Backoff.js"
import * as Observer from "../../src/internal/observer.js"
import * as Completer from "../../src/internal/queue/completer.js"
import * as QueueRunner from "../../src/internal/queue/dispatcher.js"
import { migrate } from "../../src/internal/store/migrations.js"
import * as Store from "../../src/internal/store/store.js"
import * as Job from "../../src/Job.js"
import { dropSchema, engines, freshSchema } from "../support/engines.js"
import { eventually } from "../support/jobs.js"
import { insertNoops } from "../support/store.js"

const Noop = Job.make("noop", { args: Schema.Struct({}) })

/** A store over a freshly migrated schema of its own, dropped with the scope. */
const freshStore = Effect.gen(function* () {
  const sql = yield* SqlClient
  const schema = freshSchema()
  yield* Effect.addFinalizer(() => dropSchema(sql, schema))
  yield* migrate(sql, schema)
  return Store.make(sql, schema)
})

/** Queue "q" at concurrency 5 over `store`, running `handler` for every job. */
const queueOf = (
  store: Store.Store,
  handler: Effect.Effect<void>,
  observe: (observer: Observer.Observer) => Observer.Observer = (observer) => observer,
) =>
  Effect.gen(function* () {
    const completer = yield* Completer.make(store, 100)
    const runner = yield* QueueRunner.make(
      {
        name: "q",
        concurrency: 5,
        paused: false,
        pollInterval: Duration.seconds(10),
        shutdownTimeout: Duration.seconds(1),
        tracing: undefined,
        traceLinking: "link",
        deadLetter: undefined,
        limits: undefined,
      },
      {
        store,
        completer,
        observer: observe(yield* Observer.make(16)),
        node: "n",
        handlers: new Map([["noop", Noop.handler(() => handler)]]),
      },
      Backoff.defaultBackoff,
    )
    return { completer, runner }
  })

for (const engine of engines) {
  describe(`dispatcher on ${engine.name}`, () => {
    layer(engine.layer, { timeout: 60_000, excludeTestServices: true })((it) => {
      it.scoped("a claim interrupted after its commit puts its jobs back instead of stranding them", () =>
        Effect.gen(function* () {
          const real = yield* freshStore
          const [job] = yield* insertNoops(real, 1)
          // The claim commits, but its answer is slow to arrive: the queue stops meanwhile.
          let claimed = 0
          const store: Store.Store = {
            ...real,
            claim: (...args) =>
              Effect.tap(real.claim(...args), () => {
                claimed++
                return Effect.sleep("500 millis")
              }),
          }
          const { completer, runner } = yield* queueOf(store, Effect.never)
          const loop = yield* Effect.fork(runner.run)
          yield* Effect.repeat(
            Effect.sync(() => claimed),
            { until: (n) => n === 1, schedule: Schedule.spaced("10 millis") },
          )
          expect((yield* real.get(job!.id))!.state).toBe("executing")
          yield* Fiber.interrupt(loop)
          yield* completer.flushRemaining
          const after = (yield* real.get(job!.id))!
          expect(after.state).toBe("available")
          expect(after.attempt).toBe(0)
        }),
      )

      it.scoped("a claim under way when the queue is paused gives back what it took", () =>
        Effect.gen(function* () {
          const real = yield* freshStore
          const gate = yield* Deferred.make<void>()
          let claims = 0
          // The claim starts, then waits: the queue is paused and a job inserted meanwhile.
          const store: Store.Store = {
            ...real,
            claim: (...args) =>
              Effect.zipRight(
                Effect.sync(() => claims++),
                Effect.zipRight(Deferred.await(gate), real.claim(...args)),
              ),
          }
          let ran = 0
          const { completer, runner } = yield* queueOf(
            store,
            Effect.sync(() => {
              ran++
            }),
          )
          const loop = yield* Effect.fork(runner.run)
          yield* Effect.repeat(
            Effect.sync(() => claims),
            { until: (n) => n === 1, schedule: Schedule.spaced("10 millis") },
          )
          yield* runner.pause
          const [job] = yield* insertNoops(real, 1)
          yield* Deferred.succeed(gate, undefined)
          yield* eventually(
            Effect.flatMap(real.get(job!.id), (row) =>
              row?.state === "executing" ? Effect.void : Effect.fail("not claimed yet"),
            ),
          )
          yield* Effect.sleep("200 millis")
          yield* Fiber.interrupt(loop)
          yield* completer.flushRemaining
          expect(ran).toBe(0)
          const after = (yield* real.get(job!.id))!
          expect(after.state).toBe("available")
          expect(after.attempt).toBe(0)
        }),
      )

      it.scoped("an outcome written by a write stopped at shutdown is not reported as a stale lease", () =>
        Effect.gen(function* () {
          const real = yield* freshStore
          yield* insertNoops(real, 1)
          const lease = randomUUID()
          const [job] = yield* real.claim("q", 1, "n", lease, new Date())
          // The write commits, but its answer is slow to arrive: shutdown stops the writer meanwhile.
          let written = 0
          const store: Store.Store = {
            ...real,
            finishSerialized: (outcomes) =>
              Effect.tap(real.finishSerialized(outcomes), () => {
                written++
                return Effect.sleep("500 millis")
              }),
          }
          const completer = yield* Completer.make(store, 100)
          const warnings: Array<string> = []
          const capture = Logger.replace(
            Logger.defaultLogger,
            Logger.make(({ logLevel, message }) => {
              if (LogLevel.greaterThanEqual(logLevel, LogLevel.Warning)) warnings.push(String(message))
            }),
          )
          const writer = yield* Effect.fork(completer.run)
          const settled: Array<unknown> = []
          yield* completer.submit({ kind: "completed", id: job!.id, lease, result: null }, 1, (outcome) => {
            settled.push(outcome)
          })
          yield* Effect.repeat(
            Effect.sync(() => written),
            { until: (n) => n === 1, schedule: Schedule.spaced("10 millis") },
          )
          yield* Fiber.interrupt(writer)
          yield* completer.flushRemaining.pipe(Effect.provide(capture))
          expect((yield* real.get(job!.id))!.state).toBe("completed")
          expect(warnings).toEqual([])
          // Settled once, by the second write, which found the job no longer held.
          expect(settled).toEqual([undefined])
        }),
      )

      it.scoped(
        "an attempt whose fiber dies outside its handler still counts, instead of running again and again",
        () =>
          Effect.gen(function* () {
            const real = yield* freshStore
            const [job] = yield* insertNoops(real, 1)
            let runs = 0
            // A fault in the runtime's own bookkeeping, before the handler's Effect runs.
            const { completer, runner } = yield* queueOf(
              real,
              Effect.sync(() => {
                runs++
              }),
              (observer) => ({
                ...observer,
                started: () => {
                  throw new Error("bookkeeping exploded")
                },
              }),
            )
            yield* Effect.forkScoped(completer.run)
            yield* Effect.forkScoped(runner.run)
            const failed = yield* eventually(
              Effect.flatMap(real.get(job!.id), (record) =>
                record?.state === "retryable" ? Effect.succeed(record) : Effect.fail(new Error("not yet")),
              ),
            )
            expect(failed.attempt).toBe(1)
            expect(failed.errors.map((e) => e.tag)).toEqual(["Defect"])
            expect(failed.errors[0]!.message).toContain("bookkeeping exploded")
            // Retried after the default backoff's first wait (1 s), not at once.
            expect(failed.scheduledAt.getTime() - Date.now()).toBeGreaterThan(500)
            expect(runs).toBe(0)
          }),
      )

      it.scoped("a completion callback that throws does not stop the outcome writer", () =>
        Effect.gen(function* () {
          const real = yield* freshStore
          yield* insertNoops(real, 2)
          const lease = randomUUID()
          const [first, second] = yield* real.claim("q", 2, "n", lease, new Date())
          const completer = yield* Completer.make(real, 100)
          const writer = yield* Effect.fork(completer.run)
          yield* completer.submit({ kind: "completed", id: first!.id, lease, result: null }, 1, () => {
            throw new Error("callback exploded")
          })
          yield* completer.barrier
          const settled: Array<unknown> = []
          yield* completer.submit(
            { kind: "completed", id: second!.id, lease, result: null },
            1,
            (outcome) => {
              settled.push(outcome?.kind)
            },
          )
          // A writer that died would never answer.
          yield* completer.barrier.pipe(Effect.timeout("10 seconds"))
          expect(settled).toEqual(["completed"])
          expect((yield* real.get(first!.id))!.state).toBe("completed")
          expect((yield* real.get(second!.id))!.state).toBe("completed")
          expect(writer.unsafePoll()).toBe(null)
        }),
      )

      it.scoped("an outcome the database refuses is stored as discarded, and subscribers hear that", () =>
        Effect.gen(function* () {
          const real = yield* freshStore
          const [job] = yield* insertNoops(real, 1)
          // The database refuses the completion for its content; the discarded outcome that
          // replaces it goes through.
          let refused = false
          const store: Store.Store = {
            ...real,
            finishSerialized: (outcomes) => {
              if (refused) return real.finishSerialized(outcomes)
              refused = true
              return Effect.fail(
                new SqlError({ cause: { code: "22P05", message: "unsupported Unicode escape sequence" } }),
              )
            },
          }
          let observer: Observer.Observer | undefined
          const { completer, runner } = yield* queueOf(store, Effect.void, (made) => {
            observer = made
            return made
          })
          const events = yield* observer!.subscribe
          yield* Effect.forkScoped(completer.run)
          yield* Effect.forkScoped(runner.run)
          const stored = yield* eventually(
            Effect.flatMap(real.get(job!.id), (record) =>
              record?.state === "discarded" ? Effect.succeed(record) : Effect.fail(new Error("not yet")),
            ),
          )
          expect(stored.errors.map((e) => e.tag)).toEqual(["UnstorableOutcome"])
          const seen = [yield* Queue.take(events), yield* Queue.take(events)]
          expect(seen.map((e) => [e._tag, e.id])).toEqual([
            ["Started", job!.id],
            ["Discarded", job!.id],
          ])
          expect(seen[1]!._tag === "Discarded" && seen[1]!.reason).toContain("could not be stored")
        }),
      )

      it.scoped("while outcomes cannot be written, a queue claims no more than twice its concurrency", () =>
        Effect.gen(function* () {
          const real = yield* freshStore
          yield* insertNoops(real, 30)
          // Handlers finish at once, but no outcome reaches the database until the gate opens.
          const gate = yield* Effect.makeLatch(false)
          const store: Store.Store = {
            ...real,
            finishSerialized: (outcomes) => Effect.zipRight(gate.await, real.finishSerialized(outcomes)),
          }
          const { completer, runner } = yield* queueOf(store, Effect.void)
          yield* Effect.forkScoped(completer.run)
          yield* Effect.forkScoped(runner.run)
          const countOf = (state: string) =>
            Effect.map(
              real.listJobs({
                filter: { queue: "q", state: state as "executing" },
                limit: 100,
                order: "newest",
              }),
              (jobs) => jobs.length,
            )
          yield* Effect.repeat(countOf("executing"), {
            until: (n) => n >= 10,
            schedule: Schedule.spaced("10 millis"),
          })
          // Every handler has finished by now; a queue without the bound would keep claiming.
          yield* Effect.sleep("300 millis")
          expect(yield* countOf("executing")).toBe(10)
          expect(yield* countOf("available")).toBe(20)
          yield* gate.open
          yield* Effect.repeat(countOf("completed"), {
            until: (n) => n === 30,
            schedule: Schedule.spaced("10 millis"),
          }).pipe(Effect.timeout("20 seconds"))
          expect(yield* countOf("completed")).toBe(30)
        }),
      )
    })
  })
}
