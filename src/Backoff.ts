/**
 * How long a failed job waits before its next attempt.
 */
import { Duration, Effect, Random } from "effect"

export interface Backoff {
  readonly _tag: "Backoff"
  /** The wait after failed attempt number `attempt` (the first attempt is 1). */
  readonly delay: (attempt: number) => Effect.Effect<Duration.Duration>
}

/**
 * What a job definition accepts as `backoff`: a `Backoff`, one fixed delay, a list of delays
 * (the last one repeats), or a function of the attempt number.
 */
export type BackoffInput =
  | Backoff
  | Duration.DurationInput
  | ReadonlyArray<Duration.DurationInput>
  | ((attempt: number) => Duration.DurationInput)

const make = (delay: Backoff["delay"]): Backoff => ({ _tag: "Backoff", delay })

export const isBackoff = (u: unknown): u is Backoff =>
  typeof u === "object" && u !== null && (u as Backoff)._tag === "Backoff"

/**
 * `base × factor^(attempt − 1)`, capped at `max`, spread by ± `jitter` (a fraction) so that
 * jobs failing together do not retry together.
 *
 * Defaults: base 1 second, factor 2, max 1 hour, jitter 0.1. With the default 20 attempts a
 * job keeps retrying for about 8 hours.
 */
export const exponential = (
  options: {
    readonly base?: Duration.DurationInput | undefined
    readonly factor?: number | undefined
    readonly max?: Duration.DurationInput | undefined
    readonly jitter?: number | undefined
  } = {},
): Backoff => {
  const base = Duration.toMillis(options.base ?? "1 second")
  const factor = options.factor ?? 2
  const max = Duration.toMillis(options.max ?? "1 hour")
  const jitter = options.jitter ?? 0.1
  return make((attempt) =>
    Effect.map(Random.next, (r) => {
      const raw = Math.min(base * factor ** Math.max(0, attempt - 1), max)
      return Duration.millis(Math.max(0, Math.round(raw * (1 + jitter * (2 * r - 1)))))
    }),
  )
}

/** The same wait after every failure. */
export const fixed = (delay: Duration.DurationInput): Backoff => {
  const d = Duration.decode(delay)
  return make(() => Effect.succeed(d))
}

/** The n-th failure waits the n-th delay; after the list runs out, the last one repeats. */
export const list = (delays: ReadonlyArray<Duration.DurationInput>): Backoff => {
  if (delays.length === 0) return fixed(0)
  const ds = delays.map(Duration.decode)
  return make((attempt) => Effect.succeed(ds[Math.min(Math.max(attempt, 1), ds.length) - 1]!))
}

/** Any function of the attempt number. */
export const fromFunction = (f: (attempt: number) => Duration.DurationInput): Backoff =>
  make((attempt) => Effect.sync(() => Duration.decode(f(attempt))))

export const defaultBackoff: Backoff = exponential()

export const from = (input: BackoffInput | undefined): Backoff => {
  if (input === undefined) return defaultBackoff
  if (isBackoff(input)) return input
  if (typeof input === "function") return fromFunction(input)
  if (Array.isArray(input)) return list(input)
  return fixed(input as Duration.DurationInput)
}
