/**
 * The leader's maintenance as data: a list of rounds, each `{ name, interval, run }`, started
 * by one supervised fiber. Every round runs in a supervised fiber of its own, named after it,
 * so one that fails is restarted (or escalates) without touching the others, and it does its
 * work only while this node leads.
 */

import { Clock, Duration, Effect, type Scope } from "effect"
import { debugSpan } from "../tracing/debugSpan.js"

export interface Round<E = unknown, R = never> {
  /** The round's fiber name, in logs and in a `SupervisorEscalation`. */
  readonly name: string
  /** The wait between two rounds. */
  readonly interval: Duration.Duration
  /**
   * One round of work. It may answer when the next round is due (epoch ms, on `Clock`), when
   * that comes sooner than `interval`: a cron tick due in a moment need not wait a full poll.
   */
  readonly run: Effect.Effect<number | undefined | void, E, R>
}

/** A round whose `run` answers nothing: it runs every `interval`. */
export const round = <E, R>(name: string, interval: Duration.Duration, run: Effect.Effect<unknown, E, R>) =>
  ({ name, interval, run: Effect.asVoid(run) }) as Round<E, R>

/** Runs `round` every interval while `isLeader` says so (the check comes before every round). */
export const loop = <E, R>(
  round: Round<E, R>,
  isLeader: Effect.Effect<boolean>,
): Effect.Effect<never, E, R> => {
  const intervalMillis = Duration.toMillis(round.interval)
  return Effect.forever(
    Effect.gen(function* () {
      const next = (yield* isLeader) ? yield* debugSpan(`effect-jobs.${round.name}`)(round.run) : undefined
      const wait =
        typeof next === "number"
          ? Math.min(intervalMillis, Math.max(0, next - (yield* Clock.currentTimeMillis)))
          : intervalMillis
      yield* Effect.sleep(Duration.millis(wait))
    }),
  )
}

/**
 * The maintainer: forks every round, supervised by `supervise`, into its own scope, and waits.
 * Interrupting it stops every round.
 */
export const run = <R>(
  rounds: ReadonlyArray<Round<unknown, R>>,
  isLeader: Effect.Effect<boolean>,
  supervise: (
    name: string,
    child: Effect.Effect<never, unknown, R>,
  ) => Effect.Effect<unknown, never, R | Scope.Scope>,
): Effect.Effect<never, never, R> =>
  Effect.scoped(
    Effect.zipRight(
      Effect.forEach(rounds, (r) => supervise(r.name, loop(r, isLeader)), { discard: true }),
      Effect.never,
    ),
  )
