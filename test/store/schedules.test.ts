/**
 * Conformance of the schedules table: schedules as stored, and each tick enqueued exactly once.
 */
import { describe, expect, layer } from "@effect/vitest"
import { Effect } from "effect"
import type { NewSchedule } from "../../src/internal/store/store.js"
import { engines } from "../support/engines.js"
import { withStore } from "./support.js"

const schedule = (name: string, overrides: Partial<NewSchedule> = {}): NewSchedule => ({
  name,
  expression: "* * * * *",
  timezone: null,
  type: "report",
  queue: "q",
  argsJson: `{"kind":"sales"}`,
  priority: 2,
  maxAttempts: 5,
  meta: { team: "x" },
  missed: { backfill: 3 },
  graceMillis: 60_000,
  ...overrides,
})

const at = (iso: string) => new Date(iso)

for (const engine of engines) {
  describe(`store schedules on ${engine.name}`, () => {
    layer(engine.layer, { timeout: 60_000, excludeTestServices: true })((it) => {
      it.scoped(
        "a schedule is stored as declared; declared again it keeps its last tick, pause and creation",
        () =>
          Effect.gen(function* () {
            const { store } = yield* withStore
            const stored = yield* store.upsertSchedule(schedule("b"), at("2026-01-01T00:00:00Z"))
            expect(stored).toMatchObject({
              name: "b",
              expression: "* * * * *",
              timezone: null,
              type: "report",
              queue: "q",
              args: { kind: "sales" },
              priority: 2,
              maxAttempts: 5,
              meta: { team: "x" },
              missed: { backfill: 3 },
              graceMillis: 60_000,
              paused: false,
              lastTickAt: at("2026-01-01T00:00:00Z"),
              lastRunAt: null,
              lastJobId: null,
              createdAt: at("2026-01-01T00:00:00Z"),
            })
            yield* store.upsertSchedule(schedule("a", { missed: "skip" }), at("2026-01-01T00:00:00Z"))
            yield* store.setSchedulePaused("b", true, at("2026-01-01T00:10:00Z"))
            const redeclared = yield* store.upsertSchedule(
              schedule("b", { expression: "0 * * * *", timezone: "Europe/Paris" }),
              at("2026-01-01T00:20:00Z"),
            )
            expect(redeclared).toMatchObject({
              expression: "0 * * * *",
              timezone: "Europe/Paris",
              paused: true,
              lastTickAt: at("2026-01-01T00:00:00Z"),
              createdAt: at("2026-01-01T00:00:00Z"),
              updatedAt: at("2026-01-01T00:20:00Z"),
            })
            expect(yield* store.schedule("b")).toEqual(redeclared)
            expect(yield* store.schedule("none")).toBe(undefined)
            expect((yield* store.schedules).map((s) => [s.name, s.missed])).toEqual([
              ["a", "skip"],
              ["b", { backfill: 3 }],
            ])
            expect((yield* store.activeSchedules).map((s) => s.name)).toEqual(["a"])
          }),
      )

      it.scoped("resuming moves the last tick to the resume; removing answers whether there was one", () =>
        Effect.gen(function* () {
          const { store } = yield* withStore
          yield* store.upsertSchedule(schedule("s"), at("2026-01-01T00:00:00Z"))
          const paused = yield* store.setSchedulePaused("s", true, at("2026-01-01T01:00:00Z"))
          expect(paused).toMatchObject({ paused: true, lastTickAt: at("2026-01-01T00:00:00Z") })
          const resumed = yield* store.setSchedulePaused("s", false, at("2026-01-01T02:00:00Z"))
          expect(resumed).toMatchObject({ paused: false, lastTickAt: at("2026-01-01T02:00:00Z") })
          expect(yield* store.setSchedulePaused("none", true, at("2026-01-01T02:00:00Z"))).toBe(undefined)
          expect(yield* store.removeSchedule("s")).toBe(true)
          expect(yield* store.removeSchedule("s")).toBe(false)
          expect(yield* store.schedules).toEqual([])
        }),
      )

      it.scoped(
        "ticks are enqueued once: an enqueuer that read the schedule before another enqueued inserts nothing",
        () =>
          Effect.gen(function* () {
            const { store, rows } = yield* withStore
            const row = yield* store.upsertSchedule(schedule("s"), at("2026-01-01T00:00:00Z"))
            const ticks = [at("2026-01-01T00:01:00Z"), at("2026-01-01T00:02:00Z")]
            const now = at("2026-01-01T00:02:30Z")
            const inserted = yield* store.enqueueTicks(row, ticks, now)
            expect(inserted.map((j) => [j.queue, j.type, j.args, j.priority, j.maxAttempts, j.meta])).toEqual(
              ticks.map((tick) => [
                "q",
                "report",
                { kind: "sales" },
                2,
                5,
                { team: "x", schedule: "s", tick: tick.toISOString() },
              ]),
            )
            // The same read again, as a second enqueuer would hold it.
            expect(yield* store.enqueueTicks(row, ticks, now)).toEqual([])
            const jobs = yield* rows("jobs")
            expect(jobs.map((j: any) => Number(j.id))).toEqual(inserted.map((j) => j.id))
            expect(yield* store.schedule("s")).toMatchObject({
              lastTickAt: now,
              lastRunAt: ticks[1],
              lastJobId: inserted[1]!.id,
            })
            // A paused schedule enqueues nothing, whatever was read before.
            const current = (yield* store.schedule("s"))!
            yield* store.setSchedulePaused("s", true, now)
            expect(yield* store.enqueueTicks(current, [at("2026-01-01T00:03:00Z")], now)).toEqual([])
            expect((yield* rows("jobs")).length).toBe(2)
          }),
      )
    })
  })
}
