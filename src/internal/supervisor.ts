/**
 * OTP-style supervision for the runtime's long-running fibers: a child that fails is logged
 * and restarted after a growing delay; more than `maxRestarts` failures within `window`
 * escalate, as a supervisor's max_restarts in max_seconds does.
 */
import { Cause, Clock, Duration, Effect, type Fiber, type Scope } from "effect"
import { SupervisorEscalation } from "../JobError.js"

export interface RestartPolicy {
  /** Defaults to 10. */
  readonly maxRestarts?: number | undefined
  /** Defaults to 60 seconds. */
  readonly window?: Duration.DurationInput | undefined
  /** The first restart waits this long, doubling up to `maxDelay`. Defaults to 100 millis. */
  readonly baseDelay?: Duration.DurationInput | undefined
  /** Defaults to 10 seconds. */
  readonly maxDelay?: Duration.DurationInput | undefined
}

/**
 * Runs `child` until it is interrupted, restarting it as the policy says. Fails with
 * `SupervisorEscalation` when the policy runs out. A child that returns is done.
 */
export const supervise = <E, R>(
  name: string,
  child: Effect.Effect<unknown, E, R>,
  policy: RestartPolicy = {},
): Effect.Effect<void, SupervisorEscalation, R> => {
  const maxRestarts = policy.maxRestarts ?? 10
  const window = Duration.toMillis(policy.window ?? "60 seconds")
  const baseDelay = Duration.toMillis(policy.baseDelay ?? "100 millis")
  const maxDelay = Duration.toMillis(policy.maxDelay ?? "10 seconds")
  return Effect.gen(function* () {
    let failures: Array<number> = []
    while (true) {
      const exit = yield* Effect.exit(child)
      if (exit._tag === "Success") return
      if (Cause.isInterruptedOnly(exit.cause)) return yield* Effect.interrupt
      const now = yield* Clock.currentTimeMillis
      failures = failures.filter((t) => now - t < window)
      failures.push(now)
      const reason = Cause.pretty(exit.cause)
      if (failures.length > maxRestarts) {
        yield* Effect.logFatal(`${name} failed too often; escalating`, exit.cause)
        return yield* new SupervisorEscalation({ child: name, restarts: maxRestarts, reason })
      }
      const delay = Math.min(baseDelay * 2 ** (failures.length - 1), maxDelay)
      yield* Effect.logWarning(`${name} failed; restarting in ${delay} ms`, exit.cause)
      yield* Effect.sleep(Duration.millis(delay))
    }
  }).pipe(Effect.annotateLogs({ module: "effect-jobs", fiber: name }))
}

/**
 * `supervise`, forked into the current scope. On escalation `onEscalation` runs (the runtime
 * uses it to stop itself and tell the app).
 */
export const forkSupervised = <E, R>(
  name: string,
  child: Effect.Effect<unknown, E, R>,
  policy: RestartPolicy,
  onEscalation: (error: SupervisorEscalation) => Effect.Effect<void>,
): Effect.Effect<Fiber.RuntimeFiber<void, never>, never, R | Scope.Scope> =>
  supervise(name, child, policy).pipe(Effect.catchAll(onEscalation), Effect.forkScoped)
