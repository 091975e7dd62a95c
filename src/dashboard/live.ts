/**
 * Live pages. The dashboard process holds one LISTEN subscription on the schema's channel,
 * whatever the number of open tabs; each notification (an insert, a cancel, a queue change,
 * jobs finished on a node, which each node announces at most once a second, or a node's
 * periodic ping) becomes a "change" event on every open event stream, at most once a second;
 * so does each batch of a bulk action this dashboard runs. A tab refetches its page
 * on it while it is visible, and closes its stream while it is hidden.
 */
import { Clock, Deferred, Duration, Effect, PubSub, Schedule, Stream } from "effect"
import type { Listener } from "../Listener.js"

export interface Live {
  /** The events of one open tab, as the bytes of a `text/event-stream`. */
  readonly events: Stream.Stream<Uint8Array>
  /** A change this process made itself (a bulk action's batch): at most one event a quarter second. */
  readonly touch: Effect.Effect<void>
}

const encoder = new TextEncoder()

export const make = (listener: Listener["Type"], channel: string) =>
  Effect.gen(function* () {
    const changes = yield* PubSub.sliding<number>(16)
    // At most one a second, the last of a burst kept rather than dropped: a completion that
    // follows its insert within the second still refreshes the pages.
    yield* listener.listen(channel).pipe(
      Stream.buffer({ capacity: 1, strategy: "sliding" }),
      Stream.throttle({ cost: () => 1, units: 1, duration: "1 second", strategy: "shape" }),
      Stream.runForEach(() => PubSub.publish(changes, Date.now())),
      // A lost connection is listened to again; meanwhile the pages just do not update.
      Effect.tapErrorCause((cause) => Effect.logDebug("dashboard LISTEN lost", cause)),
      Effect.retry(Schedule.spaced(Duration.seconds(1))),
      Effect.forkScoped,
    )
    // An event stream never ends by itself, and an HTTP server closing waits for its
    // responses: every open stream ends when the dashboard's scope closes.
    const closing = yield* Deferred.make<void>()
    yield* Effect.addFinalizer(() => Deferred.succeed(closing, undefined))
    const heartbeat = Stream.tick("15 seconds").pipe(Stream.map(() => ": keep-alive\n\n"))
    const events: Stream.Stream<Uint8Array> = Stream.concat(
      Stream.make("retry: 3000\n\n"),
      Stream.merge(
        Stream.fromPubSub(changes).pipe(Stream.map((at) => `event: change\ndata: ${at}\n\n`)),
        heartbeat,
      ),
    ).pipe(
      Stream.interruptWhen(Deferred.await(closing)),
      Stream.map((text) => encoder.encode(text)),
    )
    let touched = 0
    const touch = Effect.flatMap(Clock.currentTimeMillis, (now) => {
      if (now - touched < 250) return Effect.void
      touched = now
      return Effect.asVoid(PubSub.publish(changes, now))
    })
    return { events, touch } satisfies Live
  })
