/**
 * A queue paused, resumed or scaled on one node by name, from a client that runs no queue:
 * stored for that node, which follows it, while the queue's cluster-wide state stays as it is.
 */
import { SqlClient } from "@effect/sql/SqlClient"
import { describe, expect, layer } from "@effect/vitest"
import { Context, Effect, Layer } from "effect"
import { QueueNotFound } from "../../src/JobError.js"
import * as JobsClient from "../../src/JobsClient.js"
import { engines } from "../support/engines.js"
import { eventually, NotYet, startJobs } from "../support/jobs.js"

for (const engine of engines) {
  describe(`queue controls on one node on ${engine.name}`, () => {
    layer(engine.layer, { timeout: 60_000, excludeTestServices: true })((it) => {
      it.scoped("pauses, scales and resumes a queue on the node named, and no other way", () =>
        Effect.gen(function* () {
          const jobs = yield* startJobs({ queues: { mail: 4, other: 2 }, heartbeatInterval: "100 millis" })
          const context = yield* Layer.build(
            JobsClient.layer({ schema: jobs.schema }).pipe(
              Layer.provide(Layer.succeed(SqlClient, yield* SqlClient)),
            ),
          )
          const client = Context.get(context, JobsClient.JobsClient)
          const mailHere = Effect.map(jobs.queues, (queues) => queues.find((queue) => queue.name === "mail")!)
          const until = (check: (queue: { paused: boolean; limit: number }) => boolean) =>
            eventually(
              Effect.flatMap(mailHere, (queue) =>
                check(queue) ? Effect.succeed(queue) : Effect.fail(new NotYet()),
              ),
            )

          expect(yield* client.pauseQueue("mail", { node: jobs.node })).toBe("paused")
          yield* until((queue) => queue.paused)
          // Stored for the node alone: the queue is not paused cluster-wide, nor the node's other queues.
          expect((yield* client.queueInfo("mail")).paused).toBe(false)
          expect((yield* jobs.queues).find((queue) => queue.name === "other")!.paused).toBe(false)

          yield* client.scaleQueue("mail", 9, { node: jobs.node })
          yield* until((queue) => queue.limit === 9 && queue.paused)
          // The heartbeat reports the pause, so a second pause knows it.
          yield* eventually(
            Effect.flatMap(client.nodes, (nodes) =>
              nodes[0]?.queueConfigs.mail?.paused ? Effect.void : Effect.fail(new NotYet()),
            ),
          )
          expect(yield* client.pauseQueue("mail", { node: jobs.node })).toBe("already_paused")
          expect(yield* client.resumeQueue("mail", { node: jobs.node })).toBe("resumed")
          yield* until((queue) => !queue.paused && queue.limit === 9)

          // A cluster-wide pause after the node's resume applies to it too.
          yield* client.pauseQueue("mail")
          yield* until((queue) => queue.paused)

          const refused = yield* Effect.flip(client.pauseQueue("mail", { node: "no-such-node" }))
          expect(refused).toEqual(new QueueNotFound({ queue: "mail", node: "no-such-node" }))
          expect(refused.message).toBe('queue "mail" does not run on a live node "no-such-node"')
        }),
      )
    })
  })
}
