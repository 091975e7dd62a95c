import { describe, expect, it } from "@effect/vitest"
import { Chunk, Duration, Effect, Exit, Fiber, Option, Queue, Stream, TestClock } from "effect"
import * as Notifier from "../../src/internal/node/notifier.js"
import type { Store } from "../../src/internal/store/store.js"
import * as Listener from "../../src/Listener.js"

/** A channel in memory: what is sent through the store comes back on the listener's stream. */
const fakeChannel = Effect.gen(function* () {
  const channel = yield* Queue.unbounded<string>()
  const sent: Array<string> = []
  const store = {
    channel: "jobs",
    signal: (payload: string) =>
      Effect.sync(() => {
        sent.push(payload)
        channel.unsafeOffer(payload)
      }),
  } as unknown as Store
  const listener = Listener.make("pglite", () => Stream.fromQueue(channel))
  return { channel, store, listener, sent }
})

const makeNotifier = (node = "a") =>
  Effect.gen(function* () {
    const fake = yield* fakeChannel
    let listening = 0
    const notifier = yield* Notifier.make({
      listener: fake.listener,
      store: fake.store,
      node,
      pingInterval: Duration.seconds(1),
      onListening: Effect.sync(() => {
        listening++
      }),
    })
    return { ...fake, notifier, listening: () => listening }
  })

describe("decodeSignal", () => {
  it("reads each kind of signal", () => {
    expect(Notifier.decodeSignal('{"kind":"insert","queue":"mail","priority":0,"at":5}')).toEqual(
      Option.some({ kind: "insert", queue: "mail", priority: 0, at: 5 }),
    )
    expect(Notifier.decodeSignal('{"kind":"insert","queue":"mail"}')).toEqual(
      Option.some({ kind: "insert", queue: "mail" }),
    )
    expect(Notifier.decodeSignal('{"kind":"cancel","id":7}')).toEqual(Option.some({ kind: "cancel", id: 7 }))
    expect(Notifier.decodeSignal('{"kind":"queue","queue":"mail"}')).toEqual(
      Option.some({ kind: "queue", queue: "mail" }),
    )
  })

  it("refuses what is not a signal: other JSON, wrong fields, not JSON at all", () => {
    for (const payload of [
      "hello",
      "",
      "{}",
      '{"kind":"drop","queue":"mail"}',
      '{"kind":"cancel","id":"7"}',
      '{"kind":"insert"}',
      "[1,2]",
    ]) {
      expect(Notifier.decodeSignal(payload)).toEqual(Option.none())
    }
  })
})

describe("notifier", () => {
  it.scoped("hands the signals it hears over as a stream, in order, dropping what is not a signal", () =>
    Effect.gen(function* () {
      const { notifier, channel } = yield* makeNotifier()
      yield* Effect.forkScoped(notifier.run)
      yield* channel.offer('{"kind":"insert","queue":"a"}')
      yield* channel.offer("not a signal")
      yield* channel.offer('{"kind":"cancel","id":3}')
      yield* channel.offer('{"kind":"queue","queue":"b"}')
      const heard = yield* notifier.signals.pipe(Stream.take(3), Stream.runCollect)
      expect(Chunk.toArray(heard)).toEqual([
        { kind: "insert", queue: "a" },
        { kind: "cancel", id: 3 },
        { kind: "queue", queue: "b" },
      ])
    }),
  )

  it.scoped("keeps signals heard before the stream is read, and keeps its own pings out of it", () =>
    Effect.gen(function* () {
      const { notifier, channel, sent, listening } = yield* makeNotifier("a")
      yield* Effect.forkScoped(notifier.run)
      // The watchdog's first ping comes back: LISTEN is live, and that is told once.
      yield* TestClock.adjust("20 millis")
      expect(sent).toContain('{"kind":"ping","node":"a"}')
      expect(listening()).toBe(1)
      yield* channel.offer('{"kind":"ping","node":"b"}')
      yield* channel.offer('{"kind":"cancel","id":9}')
      const first = yield* notifier.signals.pipe(Stream.take(1), Stream.runCollect)
      expect(Chunk.toArray(first)).toEqual([{ kind: "cancel", id: 9 }])
    }),
  )

  it.scoped("fails when not even its own pings come back, so the supervisor listens again", () =>
    Effect.gen(function* () {
      const fake = yield* fakeChannel
      // A store whose pings go nowhere: the connection fell silent.
      const silent = { ...fake.store, signal: () => Effect.void } as unknown as Store
      const notifier = yield* Notifier.make({
        listener: fake.listener,
        store: silent,
        node: "a",
        pingInterval: Duration.seconds(1),
        onListening: Effect.void,
      })
      const fiber = yield* Effect.fork(notifier.run)
      yield* TestClock.adjust("10 seconds")
      const exit = yield* Fiber.await(fiber)
      expect(Exit.isFailure(exit)).toBe(true)
      if (Exit.isFailure(exit)) expect(String(exit.cause)).toContain("ListenerSilent")
    }),
  )
})
