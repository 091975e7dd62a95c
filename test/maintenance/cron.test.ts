/**
 * Cron schedules: which ticks are due, one job per tick however many enqueuers race, pauses,
 * missed ticks, and refusals of bad schedules. Time is the TestClock's, except in the last
 * suite, where whole runtimes race on the live clock.
 */
import { SqlClient } from "@effect/sql/SqlClient"
import { describe, expect, it, layer } from "@effect/vitest"
import { Effect, Cron as EffectCron, Either, Schema, TestClock } from "effect"
import * as Cron from "../../src/internal/maintenance/cronEnqueuer.js"
import { migrate } from "../../src/internal/store/migrations.js"
import * as Store from "../../src/internal/store/store.js"
import * as Job from "../../src/Job.js"
import * as Schedules from "../../src/Schedules.js"
import { dropSchema, engines, freshSchema } from "../support/engines.js"
import { eventually, realSleep, startJobs } from "../support/jobs.js"

const Report = Job.make("report", { args: Schema.Struct({ kind: Schema.String }) })
const at = (iso: string) => new Date(iso).getTime()
const iso = (dates: ReadonlyArray<Date> | null) => dates?.map((d) => d.toISOString()) ?? null

describe("due ticks", () => {
  const everyMinute = EffectCron.unsafeParse("* * * * *")
  const minute = 60_000

  it("none before the first tick after the last one handled", () => {
    expect(
      Cron.dueTicks(everyMinute, at("2026-01-01T00:00:30Z"), at("2026-01-01T00:00:59.999Z"), minute, "skip"),
    ).toBe(null)
  })

  it("an on-time tick is due once its time has come", () => {
    expect(
      iso(Cron.dueTicks(everyMinute, at("2026-01-01T00:00:30Z"), at("2026-01-01T00:01:00Z"), minute, "skip")),
    ).toEqual(["2026-01-01T00:01:00.000Z"])
  })

  it("after an outage, missed ticks follow the policy and on-time ticks always run", () => {
    const last = at("2026-01-01T00:00:30Z")
    const now = at("2026-01-01T00:10:30Z")
    // On time: (00:09:30, 00:10:30]. Missed: (00:00:30, 00:09:30].
    expect(iso(Cron.dueTicks(everyMinute, last, now, minute, "skip"))).toEqual(["2026-01-01T00:10:00.000Z"])
    expect(iso(Cron.dueTicks(everyMinute, last, now, minute, "runOnce"))).toEqual([
      "2026-01-01T00:09:00.000Z",
      "2026-01-01T00:10:00.000Z",
    ])
    expect(iso(Cron.dueTicks(everyMinute, last, now, minute, { backfill: 3 }))).toEqual([
      "2026-01-01T00:07:00.000Z",
      "2026-01-01T00:08:00.000Z",
      "2026-01-01T00:09:00.000Z",
      "2026-01-01T00:10:00.000Z",
    ])
    // A backfill larger than the outage takes every missed tick, none twice.
    expect(Cron.dueTicks(everyMinute, last, now, minute, { backfill: 100 })).toHaveLength(10)
  })

  it("a missed tick exactly at the grace boundary counts as missed, once", () => {
    const ticks = Cron.dueTicks(everyMinute, at("2026-01-01T00:00:30Z"), at("2026-01-01T00:03:00Z"), minute, {
      backfill: 5,
    })
    expect(iso(ticks)).toEqual([
      "2026-01-01T00:01:00.000Z",
      "2026-01-01T00:02:00.000Z",
      "2026-01-01T00:03:00.000Z",
    ])
  })

  it("reads the expression in the schedule's time zone", () => {
    const nineInParis = EffectCron.unsafeParse("0 9 * * *", "Europe/Paris")
    expect(
      iso(Cron.dueTicks(nineInParis, at("2026-01-15T07:00:00Z"), at("2026-01-15T08:00:00Z"), minute, "skip")),
    ).toEqual(["2026-01-15T08:00:00.000Z"])
    expect(
      iso(Cron.dueTicks(nineInParis, at("2026-07-15T06:00:00Z"), at("2026-07-15T07:00:00Z"), minute, "skip")),
    ).toEqual(["2026-07-15T07:00:00.000Z"])
  })
})

/** A scheduler of its own (as each node has) over a freshly migrated schema. */
const withSchema = Effect.gen(function* () {
  const sql = yield* SqlClient
  const schema = freshSchema()
  yield* Effect.addFinalizer(() => dropSchema(sql, schema))
  yield* migrate(sql, schema)
  const scheduler = () =>
    Cron.make({ store: Store.make(sql, schema), maxPayloadBytes: 1 << 20, onInserted: () => {} })
  const jobs = Effect.map(
    sql.unsafe<{ id: string; args: unknown; meta: { schedule: string; tick: string } }>(
      `SELECT id, args, meta FROM ${schema}.jobs ORDER BY id`,
    ),
    (rows) =>
      rows.map((r) => ({ id: Number(r.id), args: r.args, schedule: r.meta.schedule, tick: r.meta.tick })),
  )
  return { sql, schema, scheduler, jobs }
})

for (const engine of engines) {
  describe(`cron schedules on ${engine.name}, on the TestClock`, () => {
    layer(engine.layer, { timeout: 60_000 })((it) => {
      it.scoped("each tick enqueues one job, named by schedule and tick; next and last run are listed", () =>
        Effect.gen(function* () {
          const { scheduler, jobs } = yield* withSchema
          const cron = scheduler()
          yield* TestClock.setTime(at("2026-01-01T00:00:30Z"))
          const added = yield* cron.add(Schedules.cron("minutely", "* * * * *", Report, { kind: "sales" }))
          expect(added.nextRunAt?.toISOString()).toBe("2026-01-01T00:01:00.000Z")
          expect(added.lastRunAt).toBe(null)

          yield* cron.enqueueDue
          expect(yield* jobs).toEqual([])
          yield* TestClock.adjust("30 seconds")
          yield* cron.enqueueDue
          yield* cron.enqueueDue
          const first = yield* jobs
          expect(first).toEqual([
            {
              id: first[0]!.id,
              args: { kind: "sales" },
              schedule: "minutely",
              tick: "2026-01-01T00:01:00.000Z",
            },
          ])
          yield* TestClock.adjust("1 minute")
          yield* cron.enqueueDue
          const both = yield* jobs
          expect(both.map((j) => j.tick)).toEqual(["2026-01-01T00:01:00.000Z", "2026-01-01T00:02:00.000Z"])

          const info = yield* cron.get("minutely")
          expect(info.lastRunAt?.toISOString()).toBe("2026-01-01T00:02:00.000Z")
          expect(info.lastJobId).toBe(both[1]!.id)
          expect(info.nextRunAt?.toISOString()).toBe("2026-01-01T00:03:00.000Z")
          expect((yield* cron.list).map((s) => s.name)).toEqual(["minutely"])
        }),
      )

      it.scoped("two nodes racing on the same schedule enqueue exactly one job per tick", () =>
        Effect.gen(function* () {
          const { scheduler, jobs } = yield* withSchema
          const nodes = [scheduler(), scheduler(), scheduler()]
          yield* TestClock.setTime(at("2026-01-01T00:00:00.500Z"))
          yield* nodes[0]!.add(Schedules.cron("every-second", "* * * * * *", Report, { kind: "race" }))
          // A node starting later declares it again: the schedule is replaced, not duplicated.
          yield* nodes[1]!.add(Schedules.cron("every-second", "* * * * * *", Report, { kind: "race" }))
          for (let i = 0; i < 20; i++) {
            yield* TestClock.adjust("1 second")
            yield* Effect.all(
              nodes.flatMap((node) => [node.enqueueDue, node.enqueueDue]),
              { concurrency: "unbounded", discard: true },
            )
          }
          const enqueued = yield* jobs
          expect(enqueued).toHaveLength(20)
          expect(new Set(enqueued.map((j) => j.tick)).size).toBe(20)
          expect(enqueued[0]!.tick).toBe("2026-01-01T00:00:01.000Z")
          expect(enqueued[19]!.tick).toBe("2026-01-01T00:00:20.000Z")
        }),
      )

      it.scoped("a paused schedule enqueues nothing, and resuming skips the ticks passed meanwhile", () =>
        Effect.gen(function* () {
          const { scheduler, jobs } = yield* withSchema
          const cron = scheduler()
          yield* TestClock.setTime(at("2026-01-01T00:00:30Z"))
          yield* cron.add(
            Schedules.cron("paused", "* * * * *", Report, { kind: "p" }, { missed: { backfill: 10 } }),
          )
          const paused = yield* cron.pause("paused")
          expect(paused.paused).toBe(true)
          expect(paused.nextRunAt).toBe(null)
          yield* TestClock.adjust("5 minutes")
          yield* cron.enqueueDue
          expect(yield* jobs).toEqual([])
          yield* cron.resume("paused")
          yield* cron.enqueueDue
          expect(yield* jobs).toEqual([])
          yield* TestClock.adjust("1 minute")
          yield* cron.enqueueDue
          expect((yield* jobs).map((j) => j.tick)).toEqual(["2026-01-01T00:06:00.000Z"])
        }),
      )

      it.scoped("ticks missed while nothing ran follow the schedule's policy", () =>
        Effect.gen(function* () {
          const { scheduler, jobs } = yield* withSchema
          const cron = scheduler()
          yield* TestClock.setTime(at("2026-01-01T00:00:30Z"))
          yield* cron.add(Schedules.cron("skip", "* * * * *", Report, { kind: "skip" }))
          yield* cron.add(
            Schedules.cron("once", "* * * * *", Report, { kind: "once" }, { missed: "runOnce" }),
          )
          yield* cron.add(
            Schedules.cron("fill", "* * * * *", Report, { kind: "fill" }, { missed: { backfill: 3 } }),
          )
          // Ten minutes pass with no node enqueuing.
          yield* TestClock.adjust("10 minutes")
          yield* cron.enqueueDue
          const bySchedule = (name: string) =>
            Effect.map(jobs, (all) => all.filter((j) => j.schedule === name).map((j) => j.tick.slice(11, 16)))
          expect(yield* bySchedule("skip")).toEqual(["00:10"])
          expect(yield* bySchedule("once")).toEqual(["00:09", "00:10"])
          expect(yield* bySchedule("fill")).toEqual(["00:07", "00:08", "00:09", "00:10"])
        }),
      )

      it.scoped("bad schedules are refused with an error naming them, and nothing is stored", () =>
        Effect.gen(function* () {
          const { scheduler } = yield* withSchema
          const cron = scheduler()
          const refused = (schedule: Schedules.CronSchedule) => Effect.flip(cron.add(schedule))

          const badExpression = yield* refused(Schedules.cron("nightly", "0 25 * * *", Report, { kind: "x" }))
          expect(badExpression._tag).toBe("InvalidSchedule")
          expect(badExpression.message).toContain('"nightly"')
          expect(badExpression.message).toContain("0 25 * * *")
          const badZone = yield* refused(
            Schedules.cron("zoned", "0 9 * * *", Report, { kind: "x" }, { timezone: "Mars/Olympus" }),
          )
          expect(badZone.message).toContain("Mars/Olympus")
          const badArgs = yield* refused(Schedules.cron("args", "* * * * *", Report, { kind: 1 } as any))
          expect(badArgs.message).toContain('"args"')
          const badPolicy = yield* refused(
            Schedules.cron("policy", "* * * * *", Report, { kind: "x" }, { missed: { backfill: 0 } }),
          )
          expect(badPolicy.message).toContain("backfill")
          // A resource definition does not compile here (test/types.test.ts); untyped, it is refused.
          const Publish = Job.make("publish", { args: Schema.Struct({}), resource: "post" })
          const untyped: Job.Definition = Publish
          const aimed = yield* refused(Schedules.cron("publish", "* * * * *", untyped, {}))
          expect(aimed._tag).toBe("InvalidSchedule")
          expect(aimed.message).toContain("no resource id")
          expect(yield* cron.list).toEqual([])

          const notFound = yield* Effect.flip(cron.remove("nope"))
          expect(notFound._tag).toBe("ScheduleNotFound")
          expect((yield* Effect.flip(cron.pause("nope")))._tag).toBe("ScheduleNotFound")
        }),
      )

      it.scoped("a removed schedule enqueues nothing more", () =>
        Effect.gen(function* () {
          const { scheduler, jobs } = yield* withSchema
          const cron = scheduler()
          yield* TestClock.setTime(at("2026-01-01T00:00:30Z"))
          yield* cron.add(Schedules.cron("gone", "* * * * *", Report, { kind: "g" }))
          yield* cron.remove("gone")
          yield* TestClock.adjust("2 minutes")
          yield* cron.enqueueDue
          expect(yield* jobs).toEqual([])
          expect(Either.isLeft(yield* Effect.either(cron.get("gone")))).toBe(true)
        }),
      )
    })
  })

  describe(`cron schedules on ${engine.name}, whole runtimes`, () => {
    layer(engine.layer, { timeout: 60_000, excludeTestServices: true })((it) => {
      it.scoped("two runtimes declaring the same schedule run one job per tick", () =>
        Effect.gen(function* () {
          const ran: Array<string> = []
          const report = Report.handler(({ job }) => Effect.sync(() => ran.push(String(job.meta.tick))))
          const schedules = [Schedules.cron("per-second", "* * * * * *", Report, { kind: "live" })]
          const a = yield* startJobs({ handlers: [report], schedules, heartbeatInterval: "200 millis" })
          const b = yield* startJobs({
            handlers: [report],
            schedules,
            heartbeatInterval: "200 millis",
            schema: a.schema,
          })
          yield* eventually(
            Effect.flatMap(a.schedules.get("per-second"), (info) =>
              info.lastJobId !== null && ran.length >= 3 ? Effect.void : Effect.fail("not yet"),
            ),
            "15 seconds",
          )
          yield* realSleep(1200)
          expect(new Set(ran).size).toBe(ran.length)
          const listed = yield* b.schedules.list
          expect(listed.map((s) => s.name)).toEqual(["per-second"])
        }),
      )

      it.scoped("a bad schedule in the layer's config fails the layer with its name", () =>
        Effect.gen(function* () {
          const error = yield* Effect.flip(
            startJobs({ schedules: [Schedules.cron("broken", "every day", Report, { kind: "x" })] }),
          )
          expect((error as { _tag: string })._tag).toBe("InvalidSchedule")
          expect(String((error as Error).message)).toContain('"broken"')
        }),
      )
    })
  })
}
