/**
 * The runtime's own work (polls, claims, heartbeats, outcome writes, maintenance) runs with
 * tracing off: under a tracer, each of its statements would otherwise start a root
 * `sql.execute` trace, several a second on every node. The code of the app (handlers, hooks,
 * tasks) runs with tracing as the app set it where the runtime was built.
 */
import { Effect, FiberRef } from "effect"

/** Whether the app that built the runtime traces. */
const appTracing = FiberRef.unsafeMake(true)

/** Runs the runtime's own `effect`, and the fibers it forks, with tracing off. */
export const quiet = <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
  Effect.flatMap(FiberRef.get(FiberRef.currentTracerEnabled), (enabled) =>
    effect.pipe(Effect.withTracerEnabled(false), Effect.locally(appTracing, enabled)),
  )

/** Runs the app's `effect` (or captures a runtime for it) with tracing as the app has it. */
export const asApp = <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
  Effect.flatMap(FiberRef.get(appTracing), (enabled) =>
    Effect.flatMap(FiberRef.get(FiberRef.currentTracerEnabled), (current) =>
      current === enabled ? effect : Effect.withTracerEnabled(effect, enabled),
    ),
  )
