/**
 * What wakes a queue's dispatcher: an insert signal (with the claim position it starts at), a
 * freed slot while a backlog exists, a resume or a scale, or else the poll interval. The
 * signals collapse into one pending wake-up, so a burst of them costs one claim.
 */
import { Duration, Effect, Queue } from "effect"
import { type ClaimPosition, claimStart, makeCursor } from "./claimPosition.js"

export interface Wakeups {
  /** Where the next claim starts; inserts move it back, claims move it on. */
  readonly cursor: ReturnType<typeof makeCursor>
  /** Wakes the dispatcher, whose next claim reads the queue from the start. */
  readonly wake: Effect.Effect<void>
  /** Wakes the dispatcher for jobs that became available at or after `at`. */
  readonly wakeAt: (at: ClaimPosition) => Effect.Effect<void>
  /** Wakes the dispatcher from outside a fiber (an attempt's observer). */
  readonly wakeUnsafe: () => void
  /** Sleeps until a wake-up or the poll interval, whichever comes first. */
  readonly idle: () => Effect.Effect<void>
}

export const make = (pollInterval: Duration.Duration): Effect.Effect<Wakeups> =>
  Effect.map(Queue.sliding<void>(1), (wakeups) => {
    const cursor = makeCursor(Duration.toMillis(pollInterval))
    const signal = cursor.signal
    const wakeAt = (at: ClaimPosition) =>
      Effect.asVoid(
        Effect.zipRight(
          Effect.sync(() => signal(at)),
          Queue.offer(wakeups, undefined),
        ),
      )
    return {
      cursor,
      wake: wakeAt(claimStart),
      wakeAt,
      wakeUnsafe: () => {
        Queue.unsafeOffer(wakeups, undefined)
      },
      idle: () => Effect.asVoid(Effect.raceFirst(Queue.take(wakeups), Effect.sleep(pollInterval))),
    }
  })
