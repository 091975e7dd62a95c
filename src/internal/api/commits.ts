/**
 * Jobs inserted inside an app's transaction, held until that transaction ends: announced
 * (the `Inserted` events, `effect_jobs_inserted_total`) once it committed, forgotten when it
 * rolled back. PostgreSQL says which (`txid_status`); nothing here waits on the app.
 */
import { Duration, Effect, Queue } from "effect"
import type { JobRecord } from "../../JobRecord.js"
import type { Store } from "../store/store.js"

export interface Commits {
  /** Holds the records inserted in `transaction` until it ends. */
  readonly track: (transaction: string, records: ReadonlyArray<JobRecord>) => void
  /** Asks after the held transactions while there are any; run it supervised. */
  readonly run: Effect.Effect<never>
}

/** How long a held transaction waits before it is asked after (again). */
const checkInterval = Duration.millis(100)

export const make = (
  store: Store,
  announce: (records: ReadonlyArray<JobRecord>) => void,
): Effect.Effect<Commits> =>
  Effect.map(Queue.sliding<void>(1), (wake) => {
    const held = new Map<string, Array<JobRecord>>()

    const check = Effect.gen(function* () {
      const ids = Array.from(held.keys())
      const statuses = yield* store.transactionStatus(ids)
      for (const id of ids) {
        const status = statuses.get(id) ?? "unknown"
        if (status === "in progress") continue
        if (status === "committed") announce(held.get(id)!)
        held.delete(id)
      }
    }).pipe(
      Effect.catchAll((error) =>
        Effect.logWarning(
          `could not read whether transactions that inserted jobs committed: ${error.message}`,
        ),
      ),
    )

    return {
      track: (transaction, records) => {
        if (records.length === 0) return
        const list = held.get(transaction)
        if (list === undefined) held.set(transaction, [...records])
        else for (const record of records) list.push(record)
        wake.unsafeOffer(undefined)
      },
      run: Effect.forever(
        Effect.suspend(() => (held.size === 0 ? Queue.take(wake) : Effect.void)).pipe(
          Effect.zipRight(Effect.sleep(checkInterval)),
          Effect.zipRight(Effect.suspend(() => (held.size === 0 ? Effect.void : check))),
        ),
      ),
    }
  })
