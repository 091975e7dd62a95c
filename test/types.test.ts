/**
 * Mistakes the types catch: each `@ts-expect-error` below is a call that must not compile
 * (`npm run typecheck` fails if it does). The run-time checks that untyped callers meet are
 * tested beside the behaviour: test/tasks/tasks.test.ts, test/maintenance/cron.test.ts and
 * test/api/resource.test.ts.
 */
import { describe, expect, expectTypeOf, it } from "@effect/vitest"
import { Effect, Schema } from "effect"
import * as Job from "../src/Job.js"
import type * as Jobs from "../src/Jobs.js"
import * as JobsClient from "../src/JobsClient.js"
import * as Schedules from "../src/Schedules.js"
import * as Task from "../src/Task.js"

const base = { id: "t", state: Schema.Number, initial: 0, run: (n: number) => Effect.succeed(n + 1) }

const Report = Job.make("report", { args: Schema.Struct({ kind: Schema.String }) })
const Publish = Job.make("publish", { args: Schema.Struct({ channel: Schema.String }), resource: "post" })

describe("mistakes the types catch", () => {
  it("a task gives exactly one of every and cron", () => {
    expectTypeOf(Task.make({ ...base, every: "1 minute" })).toEqualTypeOf<Task.Task<number, never, never>>()
    expectTypeOf(Task.make({ ...base, cron: "0 9 * * *", timezone: "Europe/Paris" })).toEqualTypeOf<
      Task.Task<number, never, never>
    >()
    // @ts-expect-error both every and cron
    Task.make({ ...base, every: "1 minute", cron: "0 9 * * *" })
    // @ts-expect-error neither every nor cron
    Task.make({ ...base })
    // @ts-expect-error a time zone applies only to a cron task
    Task.make({ ...base, every: "1 minute", timezone: "Europe/Paris" })
    expect(Task.make({ ...base, every: 0 }).every).toBe(0)
  })

  it("a job type aimed at a resource cannot be put on a cron schedule", () => {
    expectTypeOf<Job.TargetsResource<typeof Publish>>().toEqualTypeOf<true>()
    expectTypeOf<Job.TargetsResource<typeof Report>>().toEqualTypeOf<false>()
    // A definition whose resource the types do not know is left to the run-time check.
    expectTypeOf<Job.TargetsResource<Job.Definition>>().toEqualTypeOf<false>()
    const schedule = Schedules.cron("daily", "0 3 * * *", Report, { kind: "sales" })
    expect(schedule.definition.type).toBe("report")
    // @ts-expect-error a tick has no resource id to give the job
    Schedules.cron("publish", "0 9 * * *", Publish, { channel: "feed" })
  })

  it("an insert of a job type aimed at a resource gives the resource", () => {
    // Type-checked, never run.
    const inserts = Effect.gen(function* () {
      const jobs = yield* JobsClient.JobsClient
      yield* jobs.insert(Publish, { channel: "feed" }, { resource: "post-1" })
      yield* jobs.insertMany(Publish, [{ channel: "feed" }], { resource: "post-1", scheduleIn: "1 hour" })
      yield* jobs.insert(Report, { kind: "sales" })
      // @ts-expect-error no options, so no resource
      yield* jobs.insert(Publish, { channel: "feed" })
      // @ts-expect-error options without the resource
      yield* jobs.insert(Publish, { channel: "feed" }, { scheduleIn: "1 hour" })
      // @ts-expect-error insertMany too
      yield* jobs.insertMany(Publish, [{ channel: "feed" }])
      const plain: Jobs.InsertOptions = {}
      // @ts-expect-error options whose resource may be missing
      yield* jobs.insert(Publish, { channel: "feed" }, plain)
      // A definition whose resource the types do not know is left to the run-time check.
      const untyped: Job.Definition = Publish
      yield* jobs.insert(untyped, { channel: "feed" })
    })
    expectTypeOf(inserts).toEqualTypeOf<Effect.Effect<void, Jobs.InsertError, JobsClient.JobsClient>>()
  })
})
