/**
 * Stateful recurring tasks and the task manager: state threading from run to run and across
 * restarts, failures and defects, run-once tasks, runNow, hidden tasks, one run per due time
 * across nodes, and runs left by dead nodes. Time is the TestClock's, except in the last
 * suite, where a whole runtime runs configured tasks on the live clock.
 */
import { SqlClient } from "@effect/sql/SqlClient"
import { describe, expect, expectTypeOf, layer } from "@effect/vitest"
import { Chunk, Clock, Deferred, Duration, Effect, Exit, Schema, Scope, Stream, TestClock } from "effect"
import { migrate } from "../../src/internal/store/migrations.js"
import * as Store from "../../src/internal/store/store.js"
import * as TaskManager from "../../src/internal/tasks/taskManager.js"
import { TaskNotFound } from "../../src/JobError.js"
import * as Task from "../../src/Task.js"
import type { TaskEvent } from "../../src/TaskEvent.js"
import type * as Tasks from "../../src/Tasks.js"
import { dropSchema, engines, freshSchema } from "../support/engines.js"
import { eventually, NotYet, startJobs } from "../support/jobs.js"

const Count = Schema.Struct({ count: Schema.Number })

class Boom extends Schema.TaggedError<Boom>()("Boom", { reason: Schema.String }) {}

/** A counter whose runs follow a script: succeed, fail with a typed error, or die. */
const scripted = (id: string, script: Array<"ok" | "fail" | "die">, seen: Array<number>, name = id) =>
  Task.make({
    id,
    name,
    every: "1 minute",
    state: Count,
    initial: { count: 0 },
    run: (state) =>
      Effect.suspend(() => {
        seen.push(state.count)
        const step = script.shift() ?? "ok"
        if (step === "fail") return Effect.fail(new Boom({ reason: `at ${state.count}` }))
        if (step === "die") return Effect.die(new Error(`died at ${state.count}`))
        return Effect.succeed({ count: state.count + 1 })
      }),
  })

const withSchema = Effect.gen(function* () {
  const sql = yield* SqlClient
  const schema = freshSchema()
  yield* Effect.addFinalizer(() => dropSchema(sql, schema))
  yield* migrate(sql, schema)
  /** A node's task manager, in a scope of its own so the test can stop it. */
  const manager = (node: string) =>
    Effect.gen(function* () {
      const scope = yield* Scope.make()
      const made = yield* TaskManager.make({
        store: Store.make(sql, schema),
        node,
        nodeTimeoutMillis: 30_000,
        pollInterval: Duration.seconds(1),
        historyLimit: 100,
      }).pipe(Scope.extend(scope))
      // The node's heartbeat, as the runtime records it: in the database's time, whatever
      // the TestClock says, since other nodes judge its age.
      const beat = Effect.flatMap(Clock.currentTimeMillis, (now) =>
        sql.unsafe(
          `INSERT INTO ${schema}.nodes (id, host, pid, started_at, heartbeat_at) VALUES ($1, 'test', 1, $2, clock_timestamp())
           ON CONFLICT (id) DO UPDATE SET heartbeat_at = EXCLUDED.heartbeat_at`,
          [node, new Date(now).toISOString()],
        ),
      )
      yield* beat
      return { ...made, round: Effect.zipRight(beat, made.round), stop: Scope.close(scope, Exit.void) }
    })
  return { sql, schema, manager }
})

/** Waits (in real time) until the task has this many runs in its history. */
const awaitRuns = (manager: { readonly service: Tasks.Tasks["Type"] }, id: string, count: number) =>
  eventually(
    Effect.flatMap(manager.service.history(id, { limit: 1000 }), (runs) =>
      runs.length >= count
        ? Effect.succeed(runs)
        : Effect.fail(new NotYet(`${runs.length} of ${count} runs`)),
    ),
  )

const start = Date.parse("2026-03-01T12:00:00Z")

for (const engine of engines) {
  describe(`tasks on ${engine.name}, on the TestClock`, () => {
    layer(engine.layer, { timeout: 60_000 })((it) => {
      it.scoped(
        "the state threads through five runs and survives a restart; a rename keeps the history",
        () =>
          Effect.gen(function* () {
            const { manager } = yield* withSchema
            yield* TestClock.setTime(start)
            const seen: Array<number> = []
            const first = yield* manager("node-a")
            const registered = yield* first.service.register(scripted("counter", [], seen, "Counter"))
            expect(registered.nextRunAt?.getTime()).toBe(start + 60_000)
            expect(registered.status).toBe("waiting")

            yield* first.round
            expect(seen).toEqual([])
            for (let run = 1; run <= 5; run++) {
              yield* TestClock.adjust("1 minute")
              yield* first.round
              yield* awaitRuns(first, "counter", run)
            }
            expect(seen).toEqual([0, 1, 2, 3, 4])
            const before = (yield* first.service.stats())[0]!
            expect(before).toMatchObject({
              id: "counter",
              name: "Counter",
              successes: 5,
              failures: 0,
              state: { count: 5 },
            })
            expect(before.lastRunAt?.getTime()).toBe(start + 5 * 60_000)
            expect(before.nextRunAt?.getTime()).toBe(start + 6 * 60_000)
            yield* first.stop

            // The app restarts (a new node) with the task renamed.
            const second = yield* manager("node-b")
            yield* second.service.register(scripted("counter", [], seen, "Counter, renamed"))
            yield* TestClock.adjust("1 minute")
            yield* second.round
            const runs = yield* awaitRuns(second, "counter", 6)
            expect(seen).toEqual([0, 1, 2, 3, 4, 5])
            const after = (yield* second.service.stats())[0]!
            expect(after).toMatchObject({ name: "Counter, renamed", successes: 6, state: { count: 6 } })
            expect(runs.map((r: any) => r.taskName)).toEqual([
              "Counter, renamed",
              ...Array.from({ length: 5 }, () => "Counter"),
            ])
            expect(runs[0]).toMatchObject({
              node: "node-b",
              trigger: "schedule",
              outcome: "success",
              state: { count: 6 },
            })
          }),
      )

      it.scoped("a typed failure keeps the state and counts; a defect resets state and counters", () =>
        Effect.gen(function* () {
          const { manager } = yield* withSchema
          yield* TestClock.setTime(start)
          const seen: Array<number> = []
          const node = yield* manager("node-a")
          const events: Array<TaskEvent> = []
          yield* Effect.forkScoped(
            Stream.runForEach(node.service.events, (e) => Effect.sync(() => events.push(e))),
          )
          yield* Effect.repeatN(Effect.yieldNow(), 10)
          yield* node.service.register(scripted("flaky", ["ok", "ok", "fail", "ok", "die", "ok"], seen))
          const stats = () => Effect.map(node.service.stats(), (all) => all[0]!)
          for (let run = 1; run <= 4; run++) {
            yield* TestClock.adjust("1 minute")
            yield* node.round
            yield* awaitRuns(node, "flaky", run)
          }
          expect(seen).toEqual([0, 1, 2, 2])
          expect(yield* stats()).toMatchObject({
            successes: 3,
            failures: 1,
            lastError: expect.stringMatching(/^Boom: .*at 2/),
            state: { count: 3 },
            restartedAt: null,
          })

          yield* TestClock.adjust("1 minute")
          yield* node.round
          yield* awaitRuns(node, "flaky", 5)
          const reset = yield* stats()
          expect(reset).toMatchObject({ successes: 0, failures: 0, state: { count: 0 } })
          expect(reset.restartedAt?.getTime()).toBe(start + 5 * 60_000)
          expect(reset.startedAt.getTime()).toBe(start + 5 * 60_000)
          expect(reset.lastError).toContain("died at 3")

          yield* TestClock.adjust("1 minute")
          yield* node.round
          const runs = yield* awaitRuns(node, "flaky", 6)
          expect(seen).toEqual([0, 1, 2, 2, 3, 0])
          expect(runs.map((r: any) => r.outcome)).toEqual([
            "success",
            "defect",
            "success",
            "failure",
            "success",
            "success",
          ])
          expect(yield* stats()).toMatchObject({ successes: 1, failures: 0, state: { count: 1 } })
          // Each run is announced as it starts and once its outcome is stored.
          yield* eventually(Effect.sync(() => expect(events).toHaveLength(12)))
          expect(events.map((e) => e._tag)).toEqual(
            ["Succeeded", "Succeeded", "Failed", "Succeeded", "Reset", "Succeeded"].flatMap((end) => [
              "Started",
              end,
            ]),
          )
          expect(events[5]).toMatchObject({
            taskId: "flaky",
            node: "node-a",
            trigger: "schedule",
            error: expect.stringMatching(/^Boom: /),
          })
          expect(events[9]).toMatchObject({ _tag: "Reset", error: expect.stringContaining("died at 3") })
        }),
      )

      it.scoped("an interval of zero runs once, at registration, and never again by itself", () =>
        Effect.gen(function* () {
          const { manager } = yield* withSchema
          yield* TestClock.setTime(start)
          let runs = 0
          const node = yield* manager("node-a")
          yield* node.service.register(
            Task.make({
              id: "once",
              every: 0,
              state: Schema.Number,
              initial: 0,
              run: (n) => Effect.sync(() => ++runs && n + 1),
            }),
          )
          yield* node.round
          yield* awaitRuns(node, "once", 1)
          yield* TestClock.adjust("30 days")
          yield* node.round
          const [stats] = yield* node.service.stats()
          expect(stats).toMatchObject({ recurs: false, nextRunAt: null, successes: 1, state: 1 })
          expect(runs).toBe(1)
          // On demand it runs again, with the stored state.
          const again = yield* node.service.runNow("once")
          expect(again).toMatchObject({ trigger: "manual", outcome: "success", state: 2 })
        }),
      )

      it.scoped("a cron task runs at its ticks, in its time zone", () =>
        Effect.gen(function* () {
          const { manager } = yield* withSchema
          yield* TestClock.setTime(Date.parse("2026-01-15T07:30:00Z"))
          const node = yield* manager("node-a")
          const registered = yield* node.service.register(
            Task.make({
              id: "morning",
              cron: "0 9 * * *",
              timezone: "Europe/Paris",
              state: Schema.Number,
              initial: 0,
              run: (n) => Effect.succeed(n + 1),
            }),
          )
          expect(registered).toMatchObject({
            cron: "0 9 * * *",
            timezone: "Europe/Paris",
            recurs: true,
            every: null,
          })
          expect(registered.nextRunAt?.toISOString()).toBe("2026-01-15T08:00:00.000Z")
          yield* TestClock.adjust("30 minutes")
          yield* node.round
          yield* awaitRuns(node, "morning", 1)
          expect((yield* node.service.stats())[0]!.nextRunAt?.toISOString()).toBe("2026-01-16T08:00:00.000Z")
        }),
      )

      it.scoped("register, unregister and runNow refuse what they cannot do, with typed errors", () =>
        Effect.gen(function* () {
          const { manager } = yield* withSchema
          yield* TestClock.setTime(start)
          const node = yield* manager("node-a")
          const gate = yield* Deferred.make<void>()
          const started = yield* Deferred.make<void>()
          const slow = Task.make({
            id: "slow",
            every: "1 hour",
            state: Schema.Number,
            initial: 0,
            run: (n) =>
              Effect.zipRight(Deferred.succeed(started, undefined), Effect.as(Deferred.await(gate), n + 1)),
          })
          yield* node.service.register(slow)
          expect((yield* Effect.flip(node.service.register(slow)))._tag).toBe("TaskAlreadyRegistered")
          expect((yield* Effect.flip(node.service.unregister("unknown")))._tag).toBe("TaskNotRegistered")
          expect((yield* Effect.flip(node.service.runNow("unknown")))._tag).toBe("TaskNotRegistered")

          const bad = (task: Task.Task) => Effect.map(Effect.flip(node.service.register(task)), (e) => e._tag)
          const base = { state: Schema.Number, initial: 0, run: (n: number) => Effect.succeed(n) }
          // Both or neither of every and cron do not compile (test/types.test.ts); an untyped
          // caller is refused at registration.
          const untyped = (options: object) =>
            Task.make(options as Task.TaskOptions<number, number, never, never>)
          expect(yield* bad(untyped({ id: "both", every: "1 hour", cron: "* * * * *", ...base }))).toBe(
            "InvalidTask",
          )
          expect(yield* bad(untyped({ id: "neither", ...base }))).toBe("InvalidTask")
          expect(
            yield* bad(untyped({ id: "zone", every: "1 hour", timezone: "Europe/Paris", ...base })),
          ).toBe("InvalidTask")
          expect(yield* bad(Task.make({ id: "cron", cron: "61 * * * *", ...base }))).toBe("InvalidTask")
          expect(yield* bad(Task.make({ id: "", every: "1 hour", ...base }))).toBe("InvalidTask")
          expect(yield* bad(Task.make({ id: "state", every: "1 hour", ...base, initial: "x" as any }))).toBe(
            "InvalidTask",
          )
          expect((yield* node.service.stats()).map((s) => s.id)).toEqual(["slow"])

          const running = yield* Effect.fork(node.service.runNow("slow"))
          yield* Deferred.await(started)
          const busy = yield* Effect.flip(node.service.runNow("slow"))
          expect(busy).toMatchObject({ _tag: "TaskAlreadyRunning", node: "node-a" })
          expect((yield* node.service.stats())[0]).toMatchObject({ status: "running", runningOn: "node-a" })
          yield* Deferred.succeed(gate, undefined)
          expect(yield* running.await.pipe(Effect.flatten)).toMatchObject({ outcome: "success", state: 1 })

          // Unregistered, the task stays listed, registered on no node now.
          yield* node.service.unregister("slow")
          expect((yield* node.service.stats()).map((s) => [s.id, s.nodes])).toEqual([["slow", []]])
          expect((yield* Effect.flip(node.service.unregister("slow")))._tag).toBe("TaskNotRegistered")
        }),
      )

      it.scoped("unregister interrupts a run under way here and keeps the state for a later register", () =>
        Effect.gen(function* () {
          const { manager } = yield* withSchema
          yield* TestClock.setTime(start)
          const node = yield* manager("node-a")
          const started = yield* Deferred.make<void>()
          const stuck = Task.make({
            id: "stuck",
            every: "1 hour",
            state: Schema.Number,
            initial: 7,
            run: () => Effect.zipRight(Deferred.succeed(started, undefined), Effect.never),
          })
          yield* node.service.register(stuck)
          const running = yield* Effect.fork(node.service.runNow("stuck"))
          yield* Deferred.await(started)
          yield* node.service.unregister("stuck")
          const [run] = yield* node.service.history("stuck")
          expect(run).toMatchObject({ outcome: "interrupted" })
          expect(Exit.isSuccess(yield* running.await)).toBe(false)
          yield* node.service.register(stuck)
          expect((yield* node.service.stats())[0]).toMatchObject({ status: "waiting", state: 7 })
        }),
      )

      it.scoped("hidden tasks are left out of stats unless asked for", () =>
        Effect.gen(function* () {
          const { manager } = yield* withSchema
          yield* TestClock.setTime(start)
          const node = yield* manager("node-a")
          const base = {
            every: "1 hour" as const,
            state: Schema.Number,
            initial: 0,
            run: (n: number) => Effect.succeed(n),
          }
          yield* node.service.register(Task.make({ id: "shown", ...base }))
          yield* node.service.register(Task.make({ id: "internal", hidden: true, ...base }))
          expect((yield* node.service.stats()).map((s) => s.id)).toEqual(["shown"])
          expect((yield* node.service.stats({ includeHidden: true })).map((s) => s.id)).toEqual([
            "internal",
            "shown",
          ])
        }),
      )

      it.scoped(
        "a task whose interval is shorter than pollInterval runs at its own interval, counted from each run's end",
        () =>
          Effect.gen(function* () {
            const { manager } = yield* withSchema
            yield* TestClock.setTime(start)
            const node = yield* manager("node-a")
            yield* node.service.register(
              Task.make({
                id: "quick",
                every: "400 millis",
                state: Schema.Number,
                initial: 0,
                // Each run takes 100 ms, so the next is due 400 ms after it ends.
                run: (n) => Effect.as(Effect.sleep("100 millis"), n + 1),
              }),
            )
            yield* Effect.forkScoped(node.run)
            /** Waits (in real time) until the loop or a run sleeps until `at`, then moves the clock there. */
            const advanceTo = (at: number) =>
              Effect.gen(function* () {
                yield* eventually(
                  Effect.flatMap(TestClock.sleeps(), (sleeps) =>
                    Chunk.some(sleeps, (time) => time === at)
                      ? Effect.void
                      : Effect.fail(
                          new NotYet(
                            `nothing sleeps until ${at - start} ms, only ${Chunk.toReadonlyArray(sleeps).map((t) => t - start)}`,
                          ),
                        ),
                  ),
                  "3 seconds",
                )
                yield* TestClock.setTime(at)
              })
            // Due at 400, ends at 500; due at 900, ends at 1,000; due at 1,400.
            for (const due of [400, 900, 1400]) {
              yield* advanceTo(start + due)
              yield* advanceTo(start + due + 100)
            }
            const runs = yield* awaitRuns(node, "quick", 3)
            expect(runs.map((r) => [r.startedAt.getTime() - start, r.finishedAt.getTime() - start])).toEqual([
              [1400, 1500],
              [900, 1000],
              [400, 500],
            ])
            expect(runs[0]!.state).toBe(3)
          }),
      )

      it.scoped("stats on any node list every stored task, with the nodes that have it registered", () =>
        Effect.gen(function* () {
          const { manager } = yield* withSchema
          yield* TestClock.setTime(start)
          const a = yield* manager("node-a")
          const b = yield* manager("node-b")
          const admin = yield* manager("admin")
          const seen: Array<number> = []
          yield* a.service.register(scripted("shared", [], seen))
          yield* b.service.register(scripted("shared", [], seen))
          yield* b.service.register(scripted("b-only", [], seen))
          yield* b.service.register(scripted("retired", [], seen))
          yield* b.service.unregister("retired")
          const listed = (on: typeof admin) =>
            Effect.map(on.service.stats(), (all) => all.map((s) => [s.id, s.nodes]))
          const expected = [
            ["b-only", ["node-b"]],
            ["retired", []],
            ["shared", ["node-a", "node-b"]],
          ]
          // The admin node registers nothing and sees them all; so do the others.
          expect(yield* listed(admin)).toEqual(expected)
          expect(yield* listed(a)).toEqual(expected)
          // A node that stops takes its registrations with it; the stored tasks stay.
          yield* b.stop
          expect(yield* listed(admin)).toEqual([
            ["b-only", []],
            ["retired", []],
            ["shared", ["node-a"]],
          ])
        }),
      )

      it.scoped("read through its definition, a task's state and history are decoded and typed", () =>
        Effect.gen(function* () {
          const { sql, schema, manager } = yield* withSchema
          yield* TestClock.setTime(start)
          const node = yield* manager("node-a")
          const Cursor = Schema.Struct({ at: Schema.Date, seen: Schema.Number })
          const cursor = Task.make({
            id: "cursor",
            every: "1 hour",
            state: Cursor,
            initial: { at: new Date(start), seen: 0 },
            run: ({ at, seen }) => Effect.succeed({ at: new Date(at.getTime() + 1000), seen: seen + 1 }),
          })
          yield* node.service.register(cursor)
          yield* node.service.runNow("cursor")
          yield* node.service.runNow("cursor")

          const stats = yield* node.service.stats(cursor)
          expectTypeOf(stats.state).toEqualTypeOf<{ readonly at: Date; readonly seen: number }>()
          expect(stats.state).toEqual({ at: new Date(start + 2000), seen: 2 })
          expect(stats.nodes).toEqual(["node-a"])
          const runs = yield* node.service.history(cursor, { limit: 10 })
          expectTypeOf(runs[0]!.state).toEqualTypeOf<{ readonly at: Date; readonly seen: number }>()
          expect(runs.map((r) => r.state)).toEqual([
            { at: new Date(start + 2000), seen: 2 },
            { at: new Date(start + 1000), seen: 1 },
          ])
          // Listings answer the state as stored, encoded.
          expect((yield* node.service.stats())[0]!.state).toEqual({
            at: new Date(start + 2000).toISOString(),
            seen: 2,
          })

          // A definition of another id that was never stored: TaskNotFound.
          const unknown: Task.Task<typeof Cursor.Type> = { ...cursor, id: "never-stored" }
          expect(yield* Effect.flip(node.service.stats(unknown))).toMatchObject({
            _tag: "TaskNotFound",
            task: "never-stored",
          })
          expect(yield* node.service.history(unknown)).toEqual([])

          // A stored state that does not fit the definition's Schema: a typed error naming it.
          yield* sql.unsafe(
            `UPDATE ${schema}.tasks SET state = '{"at":"not a date","seen":2}' WHERE id = 'cursor'`,
          )
          const undecodable = yield* Effect.flip(node.service.stats(cursor))
          expect(undecodable).toMatchObject({ _tag: "TaskStateDecodeError", task: "cursor" })
          expect(undecodable.message).toContain("Expected a valid Date")
          yield* sql.unsafe(
            `UPDATE ${schema}.task_runs SET state = '{"seen":"two"}' WHERE id = (SELECT min(id) FROM ${schema}.task_runs)`,
          )
          const badRun = yield* Effect.flip(node.service.history(cursor))
          expect(badRun).toMatchObject({ _tag: "TaskStateDecodeError", task: "cursor", run: runs[1]!.id })
        }),
      )

      it.scoped("with the task on two nodes, each due run happens on exactly one", () =>
        Effect.gen(function* () {
          const { manager } = yield* withSchema
          yield* TestClock.setTime(start)
          const seen: Array<number> = []
          const a = yield* manager("node-a")
          const b = yield* manager("node-b")
          yield* a.service.register(scripted("shared", [], seen))
          yield* b.service.register(scripted("shared", [], seen))
          for (let run = 1; run <= 5; run++) {
            yield* TestClock.adjust("1 minute")
            yield* Effect.all([a.round, b.round, a.round, b.round], { concurrency: "unbounded" })
            yield* awaitRuns(a, "shared", run)
          }
          expect(seen).toEqual([0, 1, 2, 3, 4])
          expect((yield* a.service.history("shared")).length).toBe(5)
        }),
      )

      it.scoped(
        "a paused task is not started when due on any node; a requested run starts anyway; resume runs what came due",
        () =>
          Effect.gen(function* () {
            const { manager } = yield* withSchema
            yield* TestClock.setTime(start)
            const seen: Array<number> = []
            const a = yield* manager("node-a")
            const b = yield* manager("node-b")
            yield* a.service.register(scripted("paused", [], seen))
            yield* b.service.register(scripted("paused", [], seen))
            // Paused through one node's service: the other node follows, through the store.
            expect(yield* a.service.pause("paused")).toMatchObject({ paused: true, runRequestedAt: null })
            for (let minute = 1; minute <= 3; minute++) {
              yield* TestClock.adjust("1 minute")
              yield* Effect.all([a.round, b.round], { concurrency: "unbounded" })
            }
            expect(seen).toEqual([])
            expect(yield* a.service.history("paused")).toEqual([])

            // A requested run starts, paused or not, on one node, recorded as manual.
            const requested = yield* b.service.requestRun("paused")
            expect(requested.runRequestedAt).not.toBeNull()
            // Asked again while pending, it stays one request.
            yield* a.service.requestRun("paused")
            yield* Effect.all([a.round, b.round], { concurrency: "unbounded" })
            const [manual] = yield* awaitRuns(a, "paused", 1)
            expect(manual).toMatchObject({ trigger: "manual", outcome: "success" })
            expect(seen).toEqual([0])
            yield* Effect.all([a.round, b.round], { concurrency: "unbounded" })
            yield* TestClock.adjust("5 minutes")
            yield* Effect.all([a.round, b.round], { concurrency: "unbounded" })
            expect(seen).toEqual([0])
            expect((yield* a.service.stats())[0]).toMatchObject({ paused: true, runRequestedAt: null })

            // Resumed, the run that came due while paused starts at once, once.
            expect((yield* a.service.resume("paused")).paused).toBe(false)
            yield* Effect.all([a.round, b.round], { concurrency: "unbounded" })
            const runs = yield* awaitRuns(a, "paused", 2)
            expect(runs[0]).toMatchObject({ trigger: "schedule", outcome: "success" })
            expect(seen).toEqual([0, 1])

            for (const control of [a.service.pause, a.service.resume, a.service.requestRun]) {
              expect(yield* Effect.flip(control("unknown"))).toEqual(new TaskNotFound({ task: "unknown" }))
            }
          }),
      )

      it.scoped(
        "a run left by a node that stopped heartbeating is run again; a live node's run is left alone",
        () =>
          Effect.gen(function* () {
            const { sql, schema, manager } = yield* withSchema
            yield* TestClock.setTime(start)
            const seen: Array<number> = []
            const node = yield* manager("node-a")
            yield* node.service.register(scripted("orphan", [], seen))
            yield* TestClock.adjust("1 minute")
            const now = new Date(start + 60_000).toISOString()
            yield* sql.unsafe(
              `INSERT INTO ${schema}.nodes (id, host, pid, started_at, heartbeat_at) VALUES ('alive', 'h', 1, $1, clock_timestamp())`,
              [now],
            )
            const takeBy = (runBy: string) =>
              sql.unsafe(
                `UPDATE ${schema}.tasks SET status = 'running', run_by = $1, run_token = gen_random_uuid() WHERE id = 'orphan'`,
                [runBy],
              )
            yield* takeBy("alive")
            yield* node.round
            expect((yield* node.service.stats())[0]).toMatchObject({ status: "running", runningOn: "alive" })
            expect(seen).toEqual([])

            yield* takeBy("crashed")
            yield* node.round
            yield* awaitRuns(node, "orphan", 1)
            expect(seen).toEqual([0])
            expect((yield* node.service.stats())[0]).toMatchObject({ status: "waiting", successes: 1 })
          }),
      )
    })
  })

  describe(`tasks on ${engine.name}, a whole runtime`, () => {
    layer(engine.layer, { timeout: 60_000, excludeTestServices: true })((it) => {
      it.scoped("tasks given in the layer's config run, and the Tasks service reports them", () =>
        Effect.gen(function* () {
          const ticker = Task.make({
            id: "ticker",
            name: "Ticker",
            every: "100 millis",
            state: Count,
            initial: { count: 0 },
            run: (state) => Effect.succeed({ count: state.count + 1 }),
          })
          const jobs = yield* startJobs({ tasks: [ticker], pollInterval: "50 millis" })
          const stats = yield* eventually(
            Effect.flatMap(jobs.tasks.stats(), ([stats]) =>
              stats!.successes >= 3 ? Effect.succeed(stats!) : Effect.fail(new NotYet("fewer than 3 runs")),
            ),
          )
          expect(stats).toMatchObject({ id: "ticker", name: "Ticker", recurs: true })
          expect(Duration.toMillis(stats.every!)).toBe(100)
          expect((stats.state as { count: number }).count).toBeGreaterThanOrEqual(3)
        }),
      )
    })
  })
}
