/**
 * Conformance of the tasks and task_runs tables: registration, claims that give each run to
 * one node, outcomes written once per run, and the history.
 */
import { describe, expect, layer } from "@effect/vitest"
import { Effect } from "effect"
import type { ClaimedTask, FinishedTaskRun, NewTask, Store } from "../../src/internal/store/store.js"
import { engines } from "../support/engines.js"
import { withStore } from "./support.js"

const at = (iso: string) => new Date(iso)

const task = (id: string, overrides: Partial<NewTask> = {}): NewTask => ({
  id,
  name: `task ${id}`,
  everyMillis: 60_000,
  expression: null,
  timezone: null,
  hidden: false,
  initialJson: `{"count":0}`,
  firstRunAt: at("2026-01-01T00:01:00Z"),
  ...overrides,
})

/** Registers the task as node "a" does. */
const register = (store: Store, newTask: NewTask, at: Date, node = "a") =>
  store.registerTask(newTask, node, at, 60_000)

const tokens = ["00000000-0000-4000-8000-000000000001", "00000000-0000-4000-8000-000000000002"] as const
const node = (id: string) => ({ id, host: "h", pid: 1, queues: [], startedAt: new Date(0) })

for (const engine of engines) {
  describe(`store tasks on ${engine.name}`, () => {
    layer(engine.layer, { timeout: 60_000, excludeTestServices: true })((it) => {
      it.scoped("a task registered again keeps its state and next run, unless its schedule changed", () =>
        Effect.gen(function* () {
          const { store } = yield* withStore
          const first = yield* register(store, task("t"), at("2026-01-01T00:00:00Z"))
          expect(first).toMatchObject({
            id: "t",
            name: "task t",
            status: "waiting",
            nextRunAt: at("2026-01-01T00:01:00Z"),
            cron: null,
            recurs: true,
            successes: 0,
            failures: 0,
            state: { count: 0 },
            startedAt: at("2026-01-01T00:00:00Z"),
          })
          const renamed = yield* register(
            store,
            task("t", {
              name: "renamed",
              initialJson: `{"count":9}`,
              firstRunAt: at("2026-01-02T00:00:00Z"),
            }),
            at("2026-01-01T00:05:00Z"),
          )
          expect(renamed).toMatchObject({
            name: "renamed",
            nextRunAt: at("2026-01-01T00:01:00Z"),
            state: { count: 0 },
          })
          const rescheduled = yield* register(
            store,
            task("t", { everyMillis: null, expression: "0 * * * *", firstRunAt: at("2026-01-01T01:00:00Z") }),
            at("2026-01-01T00:06:00Z"),
          )
          expect(rescheduled).toMatchObject({ cron: "0 * * * *", nextRunAt: at("2026-01-01T01:00:00Z") })
        }),
      )

      it.scoped("stats list every stored task with the live nodes that have it registered", () =>
        Effect.gen(function* () {
          const { sql, schema, store, rows } = yield* withStore
          yield* store.heartbeat(node("a"))
          yield* store.heartbeat(node("b"))
          const t0 = at("2026-01-01T00:00:00Z")
          expect((yield* register(store, task("shared"), t0, "a")).nodes).toEqual(["a"])
          expect((yield* register(store, task("shared"), t0, "b")).nodes).toEqual(["a", "b"])
          yield* register(store, task("only-b"), t0, "b")
          yield* register(store, task("hidden-b", { hidden: true }), t0, "b")
          const listed = () =>
            Effect.map(store.taskStats(undefined, true, 60_000), (all) => all.map((s) => [s.id, s.nodes]))
          expect(yield* listed()).toEqual([
            ["hidden-b", ["b"]],
            ["only-b", ["b"]],
            ["shared", ["a", "b"]],
          ])

          yield* store.unregisterTask("only-b", "b")
          // A node silent past the timeout is not counted; its rows stay until it is forgotten.
          yield* sql.unsafe(
            `UPDATE ${schema}.nodes SET heartbeat_at = now() - interval '1 hour' WHERE id = 'a'`,
          )
          expect(yield* listed()).toEqual([
            ["hidden-b", ["b"]],
            ["only-b", []],
            ["shared", ["b"]],
          ])
          expect((yield* rows("task_nodes", "node = 'a'")).length).toBe(1)

          // The rescuer removed node a; node b stops: forgetting b's rows takes a's too.
          yield* sql.unsafe(`DELETE FROM ${schema}.nodes WHERE id = 'a'`)
          yield* store.forgetTaskNodes("b")
          expect(yield* rows("task_nodes")).toEqual([])
          expect(yield* listed()).toEqual([
            ["hidden-b", []],
            ["only-b", []],
            ["shared", []],
          ])
        }),
      )

      it.scoped(
        "a due run is claimed by one node; another node may take it only once the first falls silent",
        () =>
          Effect.gen(function* () {
            const { sql, schema, store, rows } = yield* withStore
            yield* store.heartbeat(node("a"))
            yield* store.heartbeat(node("b"))
            yield* register(store, task("due"), at("2026-01-01T00:00:00Z"))
            yield* register(
              store,
              task("later", { firstRunAt: at("2026-01-01T09:00:00Z") }),
              at("2026-01-01T00:00:00Z"),
            )
            const now = at("2026-01-01T00:02:00Z")
            const claimed = yield* store.claimDueTasks(["due", "later"], "a", 60_000, tokens[0], now)
            expect(claimed).toEqual([
              { id: "due", state: { count: 0 }, runToken: tokens[0], requestedAt: null },
            ])
            const [row] = yield* rows("tasks", "id = 'due'")
            expect([row.status, row.run_by]).toEqual(["running", "a"])
            expect(yield* store.taskRunBy("due")).toBe("a")
            // The running task has no next due time; the waiting one is due at 09:00.
            expect(yield* store.nextTaskRunAt(["due", "later"], now)).toEqual(at("2026-01-01T09:00:00Z"))
            expect(yield* store.nextTaskRunAt(["due"], now)).toBe(null)
            expect(yield* store.nextTaskRunAt(["later"], at("2026-01-01T09:00:00Z"))).toBe(null)
            expect(yield* store.claimDueTasks(["due"], "b", 60_000, tokens[1], now)).toEqual([])
            expect(yield* store.claimTask("due", "b", 60_000, tokens[1], now)).toBe(undefined)
            yield* sql.unsafe(
              `UPDATE ${schema}.nodes SET heartbeat_at = now() - interval '1 hour' WHERE id = 'a'`,
            )
            expect(yield* store.claimTask("due", "b", 60_000, tokens[1], now)).toEqual({
              id: "due",
              state: { count: 0 },
              runToken: tokens[1],
              requestedAt: null,
            })
            expect(yield* store.taskRunBy("due")).toBe("b")
          }),
      )

      it.scoped(
        "a requested run is claimed paused or not; an interrupted run keeps the request, one asked for during a scheduled run outlives it",
        () =>
          Effect.gen(function* () {
            const { store, rows } = yield* withStore
            yield* store.heartbeat(node("a"))
            yield* register(
              store,
              task("t", { firstRunAt: at("2026-01-01T09:00:00Z") }),
              at("2026-01-01T00:00:00Z"),
            )
            const now = at("2026-01-01T00:01:00Z")
            expect(yield* store.setTaskPaused("t", true, now)).toBe(true)
            expect(yield* store.setTaskPaused("nope", true, now)).toBe(false)
            expect(yield* store.requestTaskRun("nope")).toBe(false)
            expect(
              yield* store.claimDueTasks(["t"], "a", 60_000, tokens[0], at("2026-01-01T10:00:00Z")),
            ).toEqual([])
            expect(yield* store.requestTaskRun("t")).toBe(true)
            const finish = (run: ClaimedTask, outcome: FinishedTaskRun["outcome"]) =>
              store.finishTaskRun({
                run,
                node: "a",
                trigger: "manual",
                outcome,
                startedAt: now,
                finishedAt: now,
                nextRunAt: at("2026-01-01T09:00:00Z"),
                initialJson: `{"count":0}`,
                historyLimit: 10,
              })
            // Interrupted (a shutdown): the request stays for the next claim.
            const [first] = yield* store.claimDueTasks(["t"], "a", 60_000, tokens[0], now)
            expect(first!.requestedAt).not.toBeNull()
            yield* finish(first!, { kind: "interrupted" })
            const [second] = yield* store.claimDueTasks(["t"], "a", 60_000, tokens[1], now)
            expect(second!.requestedAt).toEqual(first!.requestedAt)
            // Served by a run that finished.
            yield* finish(second!, { kind: "success", state: { count: 1 } })
            expect((yield* rows("tasks"))[0].run_requested_at).toBeNull()
            // Resumed and due: a request made while its scheduled run runs stays for the next run.
            yield* store.setTaskPaused("t", false, now)
            const later = at("2026-01-01T10:00:00Z")
            const [scheduled] = yield* store.claimDueTasks(["t"], "a", 60_000, tokens[0], later)
            expect(scheduled!.requestedAt).toBeNull()
            yield* store.requestTaskRun("t")
            yield* finish(scheduled!, { kind: "failure", error: "no" })
            const [next] = yield* store.claimDueTasks(["t"], "a", 60_000, tokens[1], now)
            expect(next!.requestedAt).not.toBeNull()
            yield* finish(next!, { kind: "success", state: { count: 2 } })
            expect((yield* rows("tasks"))[0].run_requested_at).toBeNull()
          }),
      )

      it.scoped("an outcome is written once, by the run that holds the task, with its history row", () =>
        Effect.gen(function* () {
          const { store, rows } = yield* withStore
          yield* store.heartbeat(node("a"))
          yield* register(store, task("t"), at("2026-01-01T00:00:00Z"))
          const [claimed] = yield* store.claimDueTasks(
            ["t"],
            "a",
            60_000,
            tokens[0],
            at("2026-01-01T00:01:00Z"),
          )
          const finished: FinishedTaskRun = {
            run: claimed!,
            node: "a",
            trigger: "schedule",
            outcome: { kind: "success", state: { count: 1 } },
            startedAt: at("2026-01-01T00:01:00Z"),
            finishedAt: at("2026-01-01T00:01:05Z"),
            nextRunAt: at("2026-01-01T00:02:05Z"),
            initialJson: `{"count":0}`,
            historyLimit: 2,
          }
          const run = yield* store.finishTaskRun(finished)
          expect(run).toMatchObject({
            taskId: "t",
            taskName: "task t",
            node: "a",
            trigger: "schedule",
            outcome: "success",
            error: null,
            state: { count: 1 },
            startedAt: at("2026-01-01T00:01:00Z"),
            finishedAt: at("2026-01-01T00:01:05Z"),
          })
          // Written again with the same token: the run no longer holds the task.
          expect(yield* store.finishTaskRun(finished)).toBe(undefined)
          const [row] = yield* rows("tasks")
          expect([row.status, row.run_by, row.state, Number(row.successes)]).toEqual([
            "waiting",
            null,
            { count: 1 },
            1,
          ])
          expect(new Date(row.next_run_at)).toEqual(at("2026-01-01T00:02:05Z"))
          expect((yield* rows("task_runs")).length).toBe(1)
        }),
      )

      it.scoped("a defect resets the state and counters; the history keeps the newest runs", () =>
        Effect.gen(function* () {
          const { store } = yield* withStore
          yield* store.heartbeat(node("a"))
          yield* register(store, task("t"), at("2026-01-01T00:00:00Z"))
          const runOnce = (n: number, outcome: FinishedTaskRun["outcome"]) =>
            Effect.gen(function* () {
              const now = at(`2026-01-01T0${n}:00:00Z`)
              const claimed = yield* store.claimTask("t", "a", 60_000, tokens[n % 2], now)
              return yield* store.finishTaskRun({
                run: claimed!,
                node: "a",
                trigger: "manual",
                outcome,
                startedAt: now,
                finishedAt: now,
                nextRunAt: null,
                initialJson: `{"count":0}`,
                historyLimit: 2,
              })
            })
          yield* runOnce(1, { kind: "success", state: { count: 1 } })
          yield* runOnce(2, { kind: "failure", error: "boom" })
          const afterFailure = (yield* store.taskStats(["t"], false, 60_000))[0]
          expect(afterFailure).toMatchObject({
            successes: 1,
            failures: 1,
            lastError: "boom",
            state: { count: 1 },
          })
          yield* runOnce(3, { kind: "defect", error: "died" })
          const [stats] = yield* store.taskStats(undefined, false, 60_000)
          expect(stats).toMatchObject({
            successes: 0,
            failures: 0,
            lastError: "died",
            state: { count: 0 },
            restartedAt: at("2026-01-01T03:00:00Z"),
            nextRunAt: null,
          })
          const history = yield* store.taskHistory("t", 50)
          expect(history.map((r) => r.outcome)).toEqual(["defect", "failure"])
          expect((yield* store.taskHistory("t", 1)).map((r) => r.outcome)).toEqual(["defect"])
        }),
      )

      it.scoped(
        "an interrupted run leaves the task due as it was; hidden tasks are listed only when asked",
        () =>
          Effect.gen(function* () {
            const { store } = yield* withStore
            yield* store.heartbeat(node("a"))
            yield* register(store, task("t"), at("2026-01-01T00:00:00Z"))
            yield* register(store, task("h", { hidden: true }), at("2026-01-01T00:00:00Z"))
            const [claimed] = yield* store.claimDueTasks(
              ["t"],
              "a",
              60_000,
              tokens[0],
              at("2026-01-01T00:05:00Z"),
            )
            const run = yield* store.finishTaskRun({
              run: claimed!,
              node: "a",
              trigger: "schedule",
              outcome: { kind: "interrupted" },
              startedAt: at("2026-01-01T00:05:00Z"),
              finishedAt: at("2026-01-01T00:05:01Z"),
              nextRunAt: at("2026-01-01T00:06:01Z"),
              initialJson: `{"count":0}`,
              historyLimit: 10,
            })
            expect(run?.outcome).toBe("interrupted")
            const [stats] = yield* store.taskStats(["t"], false, 60_000)
            expect(stats).toMatchObject({
              status: "waiting",
              nextRunAt: at("2026-01-01T00:01:00Z"),
              lastRunAt: null,
            })
            expect((yield* store.taskStats(undefined, false, 60_000)).map((s) => s.id)).toEqual(["t"])
            expect((yield* store.taskStats(undefined, true, 60_000)).map((s) => s.id)).toEqual(["h", "t"])
          }),
      )
    })
  })
}
