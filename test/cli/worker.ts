/**
 * A worker module for `effect-jobs work --module`, as an app would write one: a handler, the
 * queues it runs, a cron schedule and a run-once task.
 */
import { Console, Effect, Schema } from "effect"
import * as Job from "../../src/Job.js"
import * as Schedules from "../../src/Schedules.js"
import * as Task from "../../src/Task.js"

const SendEmail = Job.make("send-email", { args: Schema.Struct({ to: Schema.String }) })

export const handlers = [
  SendEmail.handler(({ args, job }) => Console.log(`sent to ${args.to} (job ${job.id})`)),
]
export const queues = { default: 2 }
export const schedules = [Schedules.cron("nightly-digest", "0 3 * * *", SendEmail, { to: "ops@example.com" })]
export const tasks = [
  Task.make({
    id: "count-runs",
    every: 0,
    state: Schema.Number,
    initial: 0,
    run: (runs) => Effect.succeed(runs + 1),
  }),
]
export const options = { shutdownTimeout: "2 seconds" }
