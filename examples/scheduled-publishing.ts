/**
 * Jobs aimed at a resource: `npx tsx examples/scheduled-publishing.ts`
 *
 * A blog schedules posts for publication. The publish job is declared for the resource type
 * "post", so each job carries its post's id and the handler receives it. Publishing at a
 * time, moving it, and calling it off are one line each, whatever number of jobs the post has
 * waiting (here: the web page and the newsletter).
 */
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import { Console, Effect, Layer, Logger, LogLevel, Schema } from "effect"
import { Job, Jobs, JobsPglite } from "effect-jobs"

const PublishPost = Job.make("publish-post", {
  args: Schema.Struct({ channel: Schema.Literal("web", "newsletter") }),
  resource: "post",
})

const publishPost = PublishPost.handler(({ args, resource }) =>
  Console.log(
    `    > ${new Date().toISOString().slice(11, 23)} published post ${resource} on ${args.channel}`,
  ),
)

const JobsLive = Jobs.layer({ handlers: [publishPost], stageInterval: "100 millis" }).pipe(
  Layer.provide(JobsPglite.layer()),
)

const program = Effect.gen(function* () {
  const jobs = yield* Jobs.Jobs
  const inSeconds = (s: number) => new Date(Date.now() + s * 1000)
  const show = (post: string) =>
    Effect.gen(function* () {
      const waiting = yield* jobs.resourceJobs("post", post)
      const list = waiting.map(
        (j) => `${(j.args as { channel: string }).channel} at ${j.scheduledAt.toISOString().slice(11, 19)}`,
      )
      yield* Console.log(`  post ${post}: ${list.length === 0 ? "nothing waiting" : list.join(", ")}`)
    })

  yield* Console.log("Publish posts 41 and 42 in 2 seconds, on the web and in the newsletter:")
  for (const post of ["41", "42"]) {
    yield* jobs.insertMany(PublishPost, [{ channel: "web" }, { channel: "newsletter" }], {
      resource: post,
      scheduleAt: inSeconds(2),
    })
  }
  yield* show("41")
  yield* show("42")

  yield* Console.log("\nMove post 41 to 4 seconds from now, and don't publish post 42 after all:")
  yield* jobs.rescheduleForResource("post", "41", { scheduleAt: inSeconds(4) })
  const cancelled = yield* jobs.cancelForResource("post", "42")
  yield* Console.log(`  cancelled ${cancelled.length} jobs of post 42`)
  yield* show("41")
  yield* show("42")

  yield* Console.log("\nWaiting for post 41:")
  yield* jobs.flush("default").pipe(Effect.delay("4500 millis"))
  yield* show("41")
})

program.pipe(
  Effect.provide(JobsLive),
  Effect.zipRight(Console.log("Stopped.")),
  Logger.withMinimumLogLevel(LogLevel.Error),
  NodeRuntime.runMain,
)
