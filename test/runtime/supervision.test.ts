/**
 * Escalation when a supervised part keeps dying.
 */
import { describe, expect, layer } from "@effect/vitest"
import { Deferred, Effect, Exit, Fiber, Layer, Stream } from "effect"
import * as Listener from "../../src/Listener.js"
import { engines } from "../support/engines.js"
import { startJobs } from "../support/jobs.js"
import { echo } from "./fixtures.js"

for (const engine of engines) {
  describe(`runtime on ${engine.name}`, () => {
    layer(engine.layer, { timeout: 60_000, excludeTestServices: true })((it) => {
      it.scoped(
        "escalates when a supervised part keeps dying: awaitFailure fails and the builder is interrupted",
        () =>
          Effect.gen(function* () {
            const escalation = yield* Deferred.make<string>()
            // Opened once the app listens for the failure, so an escalation during start-up
            // cannot interrupt the app before it does.
            const gate = yield* Deferred.make<void>()
            // A LISTEN connection that works just long enough for the runtime to start, then
            // dies at once every time it is opened again.
            const dying = Layer.effect(
              Listener.Listener,
              Effect.map(Listener.Listener, (real) => {
                let opened = 0
                return Listener.make(real.engine, (channel) =>
                  opened++ === 0
                    ? real
                        .listen(channel)
                        .pipe(
                          Stream.take(1),
                          Stream.concat(Stream.drain(Stream.fromEffect(Deferred.await(gate)))),
                          Stream.concat(Stream.dieMessage("boom")),
                        )
                    : Stream.dieMessage("boom"),
                )
              }),
            )
            const app = Effect.gen(function* () {
              const jobs = yield* startJobs({
                handlers: [echo],
                restartPolicy: { maxRestarts: 2, baseDelay: "10 millis" },
              })
              yield* jobs.awaitFailure.pipe(
                Effect.catchAll((error) => Deferred.succeed(escalation, error.message)),
                // Not a child of the fiber the escalation interrupts.
                Effect.forkDaemon,
              )
              yield* Deferred.succeed(gate, undefined)
              return yield* Effect.never
            }).pipe(
              Effect.scoped,
              Effect.provide(Layer.provideMerge(dying, Layer.context<Listener.Listener>())),
            )
            const exit = yield* Fiber.await(yield* Effect.fork(app))
            expect(Exit.isInterrupted(exit)).toBe(true)
            const message = yield* Deferred.await(escalation)
            expect(message).toContain('"notifier" failed 3 times')
            expect(message).toContain("boom")
          }),
      )
    })
  })
}
