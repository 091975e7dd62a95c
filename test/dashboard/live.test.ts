/** The dashboard's live events: what a burst of notifications becomes on an open tab's stream. */
import { describe, expect, it } from "@effect/vitest"
import { Chunk, Effect, Fiber, Queue, Stream, TestClock } from "effect"
import * as Live from "../../src/dashboard/live.js"
import * as Listener from "../../src/Listener.js"

const decoder = new TextDecoder()

describe("live events", () => {
  it.scoped(
    "a burst of notifications is one change at once and one for the last of it, within a second",
    () =>
      Effect.gen(function* () {
        const notifications = yield* Queue.unbounded<string>()
        const live = yield* Live.make(
          Listener.make("pglite", () => Stream.fromQueue(notifications)),
          "test_signals",
        )
        const changes = yield* live.events.pipe(
          Stream.map((bytes) => decoder.decode(bytes)),
          Stream.filter((text) => text.startsWith("event: change")),
          Stream.take(2),
          Stream.runCollect,
          Effect.fork,
        )
        for (let j = 0; j < 20; j++) yield* Effect.yieldNow()
        // A completion right after an insert: the page must show the completion too.
        yield* Queue.offerAll(notifications, [
          '{"kind":"insert","queue":"q"}',
          '{"kind":"finished","node":"a"}',
        ])
        for (let i = 0; i < 4; i++) {
          yield* TestClock.adjust("500 millis")
          for (let j = 0; j < 10; j++) yield* Effect.yieldNow()
        }
        const done = yield* Fiber.poll(changes)
        expect(done._tag === "Some" && done.value._tag === "Success" ? Chunk.size(done.value.value) : 0).toBe(
          2,
        )
      }),
  )
})
