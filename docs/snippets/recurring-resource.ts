import { Console, Effect, Schema } from "effect"
import { Job, Jobs } from "effect-jobs"

// Every publish job is aimed at one post, named by its id when inserted.
export const PublishPost = Job.make("publish-post", {
  args: Schema.Struct({ channel: Schema.String }),
  resource: "post",
})

export const publishPost = PublishPost.handler(({ args, resource }) =>
  Console.log(`publishing post ${resource} on ${args.channel}`),
)

export const program = (postId: string, nine: Date, ten: Date) =>
  Effect.gen(function* () {
    const jobs = yield* Jobs.Jobs
    // Publish this post at 9:00.
    yield* jobs.insert(PublishPost, { channel: "web" }, { resource: postId, scheduleAt: nine })
    // Move it to 10:00: every job of the post still waiting moves, in one statement.
    yield* jobs.rescheduleForResource("post", postId, { scheduleAt: ten })
    // What is waiting for it.
    const waiting = yield* jobs.resourceJobs("post", postId)
    yield* Console.log(`${waiting.length} job(s) waiting for post ${postId}`)
    // Don't publish it after all.
    yield* jobs.cancelForResource("post", postId)
  })
