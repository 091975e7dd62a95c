/**
 * One LISTEN connection per node. The signals it hears come out as a `Stream`, consumed by one
 * supervised fiber of the runtime: dispatchers wake on inserts, running jobs are interrupted
 * on cancel, queues follow their stored state.
 *
 * A LISTEN connection can die without telling anyone, so the notifier pings itself through
 * the database and restarts the subscription when its own pings stop arriving.
 *
 * Anyone who can connect to the database can send a notification on the channel, so a signal
 * is only a hint that something changed: payloads that do not decode are dropped (logged at
 * debug level), and whoever acts on one reads the stored state first.
 */
import type { SqlError } from "@effect/sql/SqlError"
import { Clock, Duration, Effect, Queue, Schema, Stream } from "effect"
import type { Listener } from "../../Listener.js"
import type { Store } from "../store/store.js"

export const Signal = Schema.Union(
  // Where the jobs became available in the claim order, when the sender says: the highest
  // priority and the earliest due time (epoch ms) among them. Without it (older
  // senders, retries by hand), the dispatcher claims from the start.
  Schema.Struct({
    kind: Schema.Literal("insert"),
    queue: Schema.String,
    priority: Schema.optional(Schema.NullOr(Schema.Number)),
    at: Schema.optional(Schema.NullOr(Schema.Number)),
  }),
  Schema.Struct({ kind: Schema.Literal("cancel"), id: Schema.Number }),
  // A task was resumed or a run of it requested: task managers look for runs to start.
  Schema.Struct({ kind: Schema.Literal("task"), id: Schema.String }),
  Schema.Struct({ kind: Schema.Literal("ping"), node: Schema.String }),
  // Jobs finished on a node (sent at most once a second while they do): for watchers such as
  // the dashboard; nodes have nothing to do on it.
  Schema.Struct({ kind: Schema.Literal("finished"), node: Schema.String }),
  // Says only which queue's stored state changed. `paused` and `concurrency` are still sent
  // for nodes of earlier versions, which obeyed them; nodes of this one re-read the store.
  Schema.Struct({
    kind: Schema.Literal("queue"),
    queue: Schema.String,
    paused: Schema.optional(Schema.Boolean),
    concurrency: Schema.optional(Schema.Number),
  }),
)
export type Signal = typeof Signal.Type

/** A payload as a signal; `None` for anything else, since anyone may send on the channel. */
export const decodeSignal = Schema.decodeUnknownOption(Schema.parseJson(Signal))

/** Sends a signal to every listening node; it needs no LISTEN of its own. */
export const sendSignal = (store: Store, signal: Signal): Effect.Effect<void, SqlError> =>
  Effect.asVoid(store.signal(JSON.stringify(signal)))

export class ListenerSilent extends Schema.TaggedError<ListenerSilent>()("ListenerSilent", {
  silentForMillis: Schema.Number,
}) {
  override get message() {
    return `no notification arrived for ${this.silentForMillis} ms, not even this node's own ping`
  }
}

export interface Notifier {
  /**
   * Every signal heard but this node's own pings, in order. One consumer: signals heard before
   * it starts wait for it, so none is lost between the start of listening and its first read.
   */
  readonly signals: Stream.Stream<Signal>
  /** Sends a signal to every node, this one included. */
  readonly send: (signal: Signal) => Effect.Effect<void, SqlError>
  /** Listens until the connection fails or falls silent; run it supervised. */
  readonly run: Effect.Effect<never, unknown>
}

export const make = (options: {
  readonly listener: Listener["Type"]
  readonly store: Store
  /** Where this node's pings go: the engine's liveness connection, when it has one. */
  readonly pingStore?: Store | undefined
  readonly node: string
  /** Called whenever listening (re)starts, since signals sent meanwhile were lost. */
  readonly onListening: Effect.Effect<void>
  readonly pingInterval: Duration.Duration
}): Effect.Effect<Notifier> =>
  Effect.map(Queue.unbounded<Signal>(), (heard) => {
    let lastHeard = 0
    let heardSinceStart = false

    const deliver = (payload: string): Effect.Effect<void> => {
      const signal = decodeSignal(payload)
      if (signal._tag === "None") {
        return Effect.logDebug(`ignoring a notification that is not a signal: ${payload.slice(0, 200)}`)
      }
      if (signal.value.kind === "ping") {
        if (signal.value.node !== options.node) return Effect.void
        return Effect.flatMap(Clock.currentTimeMillis, (now) => {
          lastHeard = now
          if (heardSinceStart) return Effect.void
          // Our own ping came back, so LISTEN is live: anything inserted before now may have
          // been missed, so everyone looks for work once.
          heardSinceStart = true
          return options.onListening
        })
      }
      return Effect.asVoid(Queue.offer(heard, signal.value))
    }

    const send = (signal: Signal) => sendSignal(options.store, signal)
    const pingStore = options.pingStore ?? options.store

    const pingMillis = Duration.toMillis(options.pingInterval)
    const watchdog = Effect.gen(function* () {
      while (true) {
        yield* pingStore.signal(JSON.stringify({ kind: "ping", node: options.node })).pipe(Effect.ignore)
        // Until the first ping comes back, ping often: that moment is when LISTEN is known to
        // be live, and start-up waits for it.
        yield* Effect.sleep(heardSinceStart ? options.pingInterval : Duration.millis(20))
        const silentFor = (yield* Clock.currentTimeMillis) - lastHeard
        if (silentFor > 3 * pingMillis) return yield* new ListenerSilent({ silentForMillis: silentFor })
      }
    })

    const run = Effect.gen(function* () {
      lastHeard = yield* Clock.currentTimeMillis
      heardSinceStart = false
      const listening = options.listener
        .listen(options.store.channel)
        .pipe(Stream.runForEach(deliver), Effect.zipRight(Effect.dieMessage("the LISTEN stream ended")))
      return yield* Effect.raceFirst(listening, watchdog)
    }) as Effect.Effect<never, unknown>

    return { signals: Stream.fromQueue(heard), send, run }
  })
