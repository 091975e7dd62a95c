/**
 * Completions are announced on the schema's channel, so that what watches the jobs (an open
 * dashboard) sees them at once rather than at the next ping.
 */
import { describe, expect, layer } from "@effect/vitest"
import { Deferred, Effect, Schema, Stream } from "effect"
import { signalChannel } from "../../src/internal/store/migrations.js"
import * as Job from "../../src/Job.js"
import { Listener } from "../../src/Listener.js"
import { engines } from "../support/engines.js"
import { awaitState, eventually, NotYet, startJobs } from "../support/jobs.js"

const Echo = Job.make("echo", { args: Schema.Struct({ n: Schema.Number }) })

for (const engine of engines) {
  describe(`finished signals on ${engine.name}`, () => {
    layer(engine.layer, { timeout: 60_000, excludeTestServices: true })((it) => {
      it.scoped("a node announces its completions on the channel long before its next ping", () =>
        Effect.gen(function* () {
          const jobs = yield* startJobs({
            handlers: [Echo.handler(() => Effect.void)],
            pingInterval: "1 minute",
          })
          const heard = yield* Deferred.make<string>()
          yield* (yield* Listener).listen(signalChannel(jobs.schema)).pipe(
            Stream.filter((payload) => payload.includes('"finished"')),
            Stream.take(1),
            Stream.runForEach((payload) => Deferred.succeed(heard, payload)),
            Effect.forkScoped,
          )
          // Until the subscription is live a completion may go unheard: complete jobs until one is.
          let n = 0
          const payload = yield* eventually(
            Effect.gen(function* () {
              const job = yield* jobs.insert(Echo, { n: n++ })
              yield* awaitState(jobs, job.id, "completed")
              const done = yield* Deferred.poll(heard)
              if (done._tag === "None") return yield* Effect.fail(new NotYet("no finished signal yet"))
              return yield* done.value
            }),
            "8 seconds",
          )
          expect(JSON.parse(payload)).toEqual({ kind: "finished", node: jobs.node })
        }),
      )
    })
  })
}
