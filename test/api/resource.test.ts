/**
 * Jobs aimed at a resource: the handler gets the resource's id, and a resource's waiting jobs
 * are listed, rescheduled and cancelled in one call each.
 */
import { describe, expect, layer } from "@effect/vitest"
import { Effect, Schema } from "effect"
import * as Job from "../../src/Job.js"
import { engines } from "../support/engines.js"
import { awaitState, startJobs } from "../support/jobs.js"

const PublishPost = Job.make("publish-post", {
  args: Schema.Struct({ channel: Schema.String }),
  resource: "post",
})
const Mail = Job.make("mail", { args: Schema.Struct({ to: Schema.String }) })

const hour = 3_600_000

for (const engine of engines) {
  describe(`resource jobs on ${engine.name}`, () => {
    layer(engine.layer, { timeout: 60_000, excludeTestServices: true })((it) => {
      it.scoped("publish at 9, move to 10, don't publish: one line each, other posts untouched", () =>
        Effect.gen(function* () {
          const published: Array<{ post: string; channel: string }> = []
          const publish = PublishPost.handler(({ args, resource }) =>
            Effect.sync(() => published.push({ post: resource, channel: args.channel })),
          )
          const jobs = yield* startJobs({ handlers: [publish, Mail.handler(() => Effect.void)] })
          const nine = new Date(Date.now() + hour)
          const ten = new Date(Date.now() + 2 * hour)

          const first = yield* jobs.insert(
            PublishPost,
            { channel: "web" },
            { resource: "post-1", scheduleAt: nine },
          )
          yield* jobs.insert(PublishPost, { channel: "feed" }, { resource: "post-1", scheduleAt: nine })
          const other = yield* jobs.insert(
            PublishPost,
            { channel: "web" },
            { resource: "post-2", scheduleAt: nine },
          )
          expect(first).toMatchObject({ resourceType: "post", resourceId: "post-1", state: "scheduled" })

          const pending = yield* jobs.resourceJobs("post", "post-1")
          expect(pending.map((j) => j.args)).toEqual([{ channel: "web" }, { channel: "feed" }])

          const moved = yield* jobs.rescheduleForResource("post", "post-1", { scheduleAt: ten })
          expect(moved).toHaveLength(2)
          expect(
            moved.every((j) => j.scheduledAt.getTime() === ten.getTime() && j.state === "scheduled"),
          ).toBe(true)
          expect((yield* jobs.get(other.id)).scheduledAt.getTime()).toBe(nine.getTime())

          const cancelled = yield* jobs.cancelForResource("post", "post-1")
          expect(cancelled.map((j) => j.state)).toEqual(["cancelled", "cancelled"])
          expect(yield* jobs.resourceJobs("post", "post-1")).toEqual([])
          expect((yield* jobs.get(first.id)).state).toBe("cancelled")
          expect((yield* jobs.get(other.id)).state).toBe("scheduled")
          // Nothing left to act on is not an error.
          expect(yield* jobs.cancelForResource("post", "post-1")).toEqual([])

          // Moved to now, the other post's job runs, and its handler is told which post.
          const now = yield* jobs.rescheduleForResource("post", "post-2", { scheduleIn: 0 })
          expect(now.map((j) => j.state)).toEqual(["available"])
          yield* awaitState(jobs, other.id, "completed")
          expect(published).toEqual([{ post: "post-2", channel: "web" }])
        }),
      )

      it.scoped(
        "a resource job needs its resource id, and other jobs cannot be given one; nothing is stored",
        () =>
          Effect.gen(function* () {
            const jobs = yield* startJobs({ queues: {} })
            // Leaving out the resource does not compile (test/types.test.ts); untyped, it is refused.
            const untyped: Job.Definition = PublishPost
            const missing = yield* Effect.flip(jobs.insert(untyped, { channel: "web" }))
            expect(missing._tag).toBe("InvalidJobOptions")
            expect(missing.message).toContain("post")
            const unwanted = yield* Effect.flip(jobs.insert(Mail, { to: "a@b.c" }, { resource: "post-1" }))
            expect(unwanted._tag).toBe("InvalidJobOptions")
            const empty = yield* Effect.flip(jobs.insert(PublishPost, { channel: "web" }, { resource: "" }))
            expect(empty._tag).toBe("InvalidJobOptions")
            const nowhere = yield* Effect.flip(jobs.rescheduleForResource("post", "post-1", {}))
            expect(nowhere._tag).toBe("InvalidJobOptions")
            expect(yield* jobs.list()).toEqual([])
          }),
      )
    })
  })
}
