/**
 * One leader per schema runs the maintenance rounds (maintenance/maintainer.ts). The leader
 * holds a row in `<schema>.leader` with an expiry it renews every `interval`; any node may
 * take the row once it has expired, so a dead or partitioned leader is replaced within
 * about two and a half intervals. The expiry is the database's time, and so is the check that
 * lets another node take an expired row: a node whose clock is off neither takes a live
 * leader's row nor holds on to its own. A node counts itself leader only for a term measured
 * on its own clock from before it sent the election (so never past the stored expiry), checked
 * before every round of work, so one that cannot renew stops at once.
 *
 * Leadership is for efficiency, not safety: every maintenance statement is also correct
 * when two nodes run it at the same time (row locks with SKIP LOCKED, idempotent deletes).
 */
import { Clock, Duration, Effect } from "effect"
import { retryDatabase } from "../store/retryDatabase.js"
import type { Store } from "../store/store.js"

export interface Leadership {
  readonly isLeader: Effect.Effect<boolean>
  /** The election loop; run it supervised. */
  readonly run: Effect.Effect<never>
  /** Gives up leadership at once (shutdown), so another node need not wait for the expiry. */
  readonly resign: Effect.Effect<void>
}

export const make = (store: Store, node: string, interval: Duration.Duration): Leadership => {
  // A term of one and a half intervals: the leader renews every interval, so a live leader
  // keeps its term with half an interval to spare, and a dead one is replaced within about
  // 2.5 intervals.
  const term = 1.5 * Duration.toMillis(interval)
  let leaderUntil = 0

  const isLeader = Effect.map(Clock.currentTimeMillis, (now) => now < leaderUntil)

  const elect = Effect.gen(function* () {
    const now = yield* Clock.currentTimeMillis
    const elected = yield* store.elect(node, term)
    const was = now < leaderUntil
    leaderUntil = elected ? now + term : 0
    if (elected && !was) yield* Effect.logInfo(`node ${node} is now the leader`)
    if (!elected && was) yield* Effect.logInfo(`node ${node} is no longer the leader`)
  })

  return {
    isLeader,
    run: Effect.forever(
      Effect.zipRight(elect.pipe(retryDatabase("electing a leader")), Effect.sleep(interval)),
    ),
    resign: Effect.suspend(() => {
      leaderUntil = 0
      return Effect.ignore(store.resign(node))
    }),
  }
}
