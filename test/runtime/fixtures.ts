/** Job definitions and helpers shared by the runtime's test files. */
import { SqlClient } from "@effect/sql/SqlClient"
import { Effect, Schema } from "effect"
import * as Store from "../../src/internal/store/store.js"
import * as Job from "../../src/Job.js"

export const Echo = Job.make("echo", {
  args: Schema.Struct({ text: Schema.String }),
  result: Schema.Struct({ echoed: Schema.String }),
  backoff: "50 millis",
})
export const echo = Echo.handler(({ args }) => Effect.succeed({ echoed: args.text }))

export const Flaky = Job.make("flaky", {
  args: Schema.Struct({ failUntil: Schema.Number }),
  maxAttempts: 3,
  backoff: ["50 millis", "100 millis"],
})
export class Boom extends Schema.TaggedError<Boom>()("Boom", { message: Schema.String }) {}
export const flaky = Flaky.handler(({ args, job }) =>
  job.attempt < args.failUntil
    ? Effect.fail(new Boom({ message: `attempt ${job.attempt} failed` }))
    : Effect.void,
)

/** Runs no queue, and rescues within a fraction of a second. */
export const quickRescue = {
  handlers: [echo],
  queues: {},
  heartbeatInterval: "100 millis",
  nodeTimeout: "300 millis",
} as const

/** A node that never heartbeats claims the queue's next job and vanishes; answers its store. */
export const orphan = (schema: string, queue: string, node: string, lease: string) =>
  Effect.gen(function* () {
    const ghost = Store.make(yield* SqlClient, schema)
    yield* ghost.claim(queue, 1, node, lease, new Date())
    return ghost
  })
