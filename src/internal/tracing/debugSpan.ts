/**
 * Spans of the runtime's own background work (maintenance rounds, migrations) appear only when
 * the minimum log level is Debug or lower: otherwise a tracer would record every round of
 * every leader, and every statement of every migration, around the clock.
 */
import { Effect, FiberRef, LogLevel } from "effect"
import { asApp } from "./quiet.js"

/** Runs `effect` in a span named `name` at debug level, and with tracing off otherwise. */
export const debugSpan =
  (name: string, attributes?: Record<string, unknown>) =>
  <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
    Effect.flatMap(FiberRef.get(FiberRef.currentMinimumLogLevel), (level) =>
      LogLevel.lessThanEqual(level, LogLevel.Debug)
        ? asApp(Effect.withSpan(effect, name, { attributes, captureStackTrace: false }))
        : Effect.withTracerEnabled(effect, false),
    )
