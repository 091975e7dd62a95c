/**
 * A worker module for `effect-jobs work --module`: a handler that logs what it sends, and
 * the queues it runs.
 */
import { Console, Effect, Schema } from "effect"
import * as Job from "../../src/Job.js"

const SendEmail = Job.make("send-email", { args: Schema.Struct({ to: Schema.String }) })

export const handlers = [
  SendEmail.handler(({ args, job }) => Console.log(`sent to ${args.to} (job ${job.id})`).pipe(Effect.as(undefined))),
]
export const queues = { default: 2 }
export const options = { shutdownTimeout: "2 seconds" }
