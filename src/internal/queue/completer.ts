/**
 * Writes attempt outcomes in batches: whatever has finished since the last write goes out
 * in one statement, so under load many completions cost one round trip, and when idle a
 * completion is written at once.
 *
 * One job's outcome must never hold up another's. Each outcome is serialized in its own job
 * fiber, with text PostgreSQL refuses made storable (store.ts). A completion whose result
 * JSON cannot carry is refused at once, and its attempt concludes as a failure instead (it
 * counts, and is retried). A batch the database refuses for its content is split until the
 * offending outcome is alone, and that one becomes a `discarded` outcome saying why. Only
 * trouble reaching the database is retried as is, until it lands.
 *
 * An outcome whose lease no longer matches (the job was rescued, cancelled or taken by
 * another node) is rejected by the statement itself and logged.
 */
import type { SqlError } from "@effect/sql/SqlError"
import { Cause, Clock, Deferred, Effect, Exit, Option, Schedule } from "effect"
import { databaseRetrySchedule } from "../store/retryDatabase.js"
import type { ErrorEntry, Outcome, SerializedOutcome, Store } from "../store/store.js"

/**
 * An outcome waiting for its write. Once written, it lets go of what it holds: an entry, or
 * the batch array holding it, that lived through a young-generation collection is in the old
 * generation, where it stays after its death until the next full collection, and everything
 * it still points to (the outcome, its callback, and through that the job) would stay alive
 * with it, then be moved to the old generation too, growing it with every job (see
 * docs/architecture.md, "Memory on the per-job path"). A class rather than a literal for the
 * reason `PlainCompletion` gives.
 */
class Pending {
  readonly _tag = "Outcome"
  constructor(
    public outcome: Outcome,
    public json: SerializedOutcome,
    readonly attempt: number,
    public onSettled: (written: Outcome | undefined) => void,
  ) {}

  /** After the write: nothing reads the entry again. */
  letGo(): void {
    this.outcome = undefined as never
    this.json = undefined as never
    this.onSettled = undefined as never
  }
}

type Entry = Pending | { readonly _tag: "Barrier"; readonly done: Deferred.Deferred<void> }

export interface Completer {
  /**
   * Queues the outcome of an attempt that finished at `at` (epoch millis); synchronous, for the
   * per-job path. `onSettled` is as for `submit`. A completion whose result cannot be stored is
   * not queued: the answer is why, and the caller concludes the attempt as a failure instead.
   */
  readonly offer: (
    outcome: Outcome,
    attempt: number,
    at: number,
    onSettled: (written: Outcome | undefined) => void,
  ) => string | undefined
  /**
   * Queues the outcome of an attempt. `onSettled` runs once the statement for it has run: with
   * the outcome as written (which differs when the original could not be stored), or with
   * `undefined` when the lease was stale and nothing was written.
   */
  readonly submit: (
    outcome: Outcome,
    attempt: number,
    onSettled: (written: Outcome | undefined) => void,
  ) => Effect.Effect<void>
  /** Waits until everything submitted before this call has been written. */
  readonly barrier: Effect.Effect<void>
  /** The writer loop; run it supervised. */
  readonly run: Effect.Effect<never>
  /** Writes what is left; for shutdown. */
  readonly flushRemaining: Effect.Effect<void>
}

/** What a refused outcome becomes: the job ends, and its errors say why. */
const unstorable = (outcome: Outcome, attempt: number, at: Date, reason: string): Outcome => {
  const error: ErrorEntry = {
    attempt,
    at,
    tag: "UnstorableOutcome",
    message: `the ${outcome.kind} outcome of this attempt could not be stored: ${reason}`,
    cause: "",
  }
  return { kind: "discarded", id: outcome.id, lease: outcome.lease, error }
}

const thrownText = (thrown: unknown): string => {
  try {
    return thrown instanceof Error ? thrown.message : String(thrown)
  } catch {
    return "an error that cannot be read"
  }
}

/**
 * The database understood the statement and refused its content (bad data), as opposed to
 * not being reachable, being overloaded or shutting down, which retrying cures.
 */
const refusedContent = (error: SqlError): boolean => {
  const code = (error.cause as { readonly code?: unknown } | undefined)?.code
  if (typeof code !== "string" || code.length !== 5) return false
  return !["08", "53", "57", "58", "40", "XX"].includes(code.slice(0, 2))
}

const reasonOf = (error: SqlError): string => {
  const cause = error.cause as { readonly message?: unknown } | undefined
  return typeof cause?.message === "string" ? cause.message : error.message
}

/**
 * The entries waiting for their write. A plain array and a parked writer instead of an Effect
 * Queue: an offer is then a push and, at most, one resume, which on the per-job path is
 * measurably cheaper.
 */
const makeBuffer = (maxBatch: number) => {
  let buffer: Array<Entry> = []
  let parked: ((resume: Effect.Effect<void>) => void) | undefined
  return {
    push: (entry: Entry) => {
      buffer.push(entry)
      if (parked !== undefined) {
        const resume = parked
        parked = undefined
        resume(Effect.void)
      }
    },
    /** Up to `maxBatch` entries, oldest first; empty when there are none. */
    drain: (): Array<Entry> => {
      if (buffer.length <= maxBatch) {
        const all = buffer
        buffer = []
        return all
      }
      return buffer.splice(0, maxBatch)
    },
    /** Puts the entries of a write that did not finish back in front, for the next write. */
    handBack: (chunk: Array<Entry>) => {
      buffer = chunk.concat(buffer)
    },
    awaitEntries: Effect.async<void>((resume) => {
      if (buffer.length > 0) return resume(Effect.void)
      parked = resume
      return Effect.sync(() => {
        parked = undefined
      })
    }),
  }
}

/** Writes outcomes, splitting a refused batch; answers the ones the statement applied. */
const writeOutcomes = (
  store: Store,
  outcomes: ReadonlyArray<Pending>,
  retry: Schedule.Schedule<unknown, unknown>,
): Effect.Effect<{ readonly applied: ReadonlySet<number>; readonly retried: boolean }, SqlError> =>
  Effect.gen(function* () {
    let retried = false
    const attempt = store.finishSerialized(outcomes.map((o) => o.json)).pipe(
      Effect.tapError((error) =>
        refusedContent(error)
          ? Effect.void
          : Effect.zipRight(
              Effect.sync(() => {
                retried = true
              }),
              Effect.logWarning(`writing job outcomes failed; retrying: ${reasonOf(error)}`),
            ),
      ),
      Effect.retry({ schedule: retry, while: (error) => !refusedContent(error) }),
    )
    const exit = yield* Effect.exit(attempt)
    if (Exit.isSuccess(exit)) return { applied: exit.value, retried }
    const failure = Cause.failureOption(exit.cause)
    // A defect or an interruption is not about the content: let it through as it is.
    if (Option.isNone(failure)) return yield* Effect.failCause(exit.cause)
    const error = failure.value
    if (outcomes.length > 1) {
      const half = Math.ceil(outcomes.length / 2)
      const first = yield* writeOutcomes(store, outcomes.slice(0, half), retry)
      const second = yield* writeOutcomes(store, outcomes.slice(half), retry)
      return {
        applied: new Set([...first.applied, ...second.applied]),
        retried: retried || first.retried || second.retried,
      }
    }
    const [only] = outcomes
    yield* Effect.logError(`the database refused the outcome of job ${only!.outcome.id}: ${reasonOf(error)}`)
    const now = new Date(yield* Clock.currentTimeMillis)
    const replacement = unstorable(only!.outcome, only!.attempt, now, reasonOf(error))
    const json = store.serialize(replacement, now)
    // The entry carries what is stored from here on: its attempt hears of the replacement, and a
    // write handed back at shutdown writes the replacement again, not the refused original.
    only!.outcome = replacement
    only!.json = json
    const written = yield* store.finishSerialized([json]).pipe(Effect.retry(retry))
    return { applied: written, retried }
  })

/**
 * Tells each written outcome's attempt what became of it, and logs the ones the statement did
 * not apply. `handedBack` holds entries of a write that was stopped while its statement ran.
 */
const settle = (
  outcomes: ReadonlyArray<Pending>,
  applied: ReadonlySet<number>,
  retried: boolean,
  handedBack: WeakSet<Entry>,
) =>
  Effect.gen(function* () {
    for (const entry of outcomes) {
      const wasApplied = applied.has(entry.outcome.id)
      // What the attempt does then (events, metrics, freeing its slot) must not stop the
      // writer: that would hand the batch back and write it again.
      try {
        entry.onSettled(wasApplied ? entry.outcome : undefined)
      } catch (thrown) {
        yield* Effect.logError(`after writing the outcome of job ${entry.outcome.id}: ${thrownText(thrown)}`)
      }
      if (wasApplied) continue
      yield* (
        retried || handedBack.has(entry) || entry.outcome.kind === "released"
          ? // A retried or stopped write may have committed before it was cut off; a
            // released job was usually cancelled or rescued meanwhile. None is news.
            Effect.logDebug(`outcome for job ${entry.outcome.id} was already written or is no longer held`)
          : Effect.logWarning(
              `outcome for job ${entry.outcome.id} rejected: the job is no longer held by this attempt's lease`,
            )
      ).pipe(Effect.annotateLogs({ job: entry.outcome.id, outcome: entry.outcome.kind }))
    }
  })

/**
 * `onWritten` hears of every write that changed jobs: the runtime tells the cluster (and open
 * dashboards) of completions from it.
 */
export const make = (
  store: Store,
  maxBatch: number,
  onWritten: () => void = () => {},
): Effect.Effect<Completer> =>
  Effect.sync(() => {
    const { push, drain, handBack, awaitEntries } = makeBuffer(maxBatch)
    // Entries of a write that was stopped while its statement ran (at shutdown, most often):
    // that statement may have committed, so when they are written again a refusal only means
    // they were written already.
    const handedBack = new WeakSet<Entry>()
    const offer = (
      outcome: Outcome,
      attempt: number,
      at: number,
      onSettled: (written: Outcome | undefined) => void,
    ) => {
      const date = new Date(at)
      let storable = outcome
      let json: SerializedOutcome
      try {
        json = store.serialize(outcome, date)
      } catch (thrown) {
        if (outcome.kind === "completed") return thrownText(thrown)
        storable = unstorable(outcome, attempt, date, thrownText(thrown))
        json = store.serialize(storable, date)
      }
      push(new Pending(storable, json, attempt, onSettled))
      return undefined
    }

    const write = (entries: ReadonlyArray<Entry>, retry: Schedule.Schedule<unknown, unknown>) =>
      Effect.gen(function* () {
        const outcomes: Array<Pending> = []
        const barriers: Array<Deferred.Deferred<void>> = []
        for (const entry of entries) {
          if (entry._tag === "Outcome") outcomes.push(entry)
          else barriers.push(entry.done)
        }
        if (outcomes.length > 0) {
          const { applied, retried } = yield* writeOutcomes(store, outcomes, retry)
          yield* settle(outcomes, applied, retried, handedBack)
          if (applied.size > 0) onWritten()
        }
        for (const done of barriers) yield* Deferred.succeed(done, undefined)
        // Only once the whole batch is settled: a write stopped midway hands its entries back.
        for (const entry of outcomes) entry.letGo()
        outcomes.length = 0
      })

    const run = Effect.forever(
      Effect.zipRight(
        awaitEntries,
        Effect.suspend(() => {
          const chunk = drain()
          return write(chunk, databaseRetrySchedule).pipe(
            // Stopped or failed mid-write: hand the batch back so that the next write (or the
            // final flush at shutdown) takes it again.
            Effect.onExit((exit) =>
              Exit.isSuccess(exit)
                ? Effect.sync(() => {
                    chunk.length = 0
                  })
                : Effect.sync(() => {
                    for (const entry of chunk) handedBack.add(entry)
                    handBack(chunk)
                  }),
            ),
          )
        }),
      ),
    ) as Effect.Effect<never>

    // At shutdown a dead database must not hold the process forever.
    const flushRemaining = Effect.gen(function* () {
      while (true) {
        const chunk = drain()
        if (chunk.length === 0) return
        yield* write(chunk, Schedule.exponential("50 millis").pipe(Schedule.upTo("5 seconds")))
      }
    }).pipe(Effect.catchAll((error) => Effect.logError("could not write job outcomes at shutdown", error)))

    return {
      offer,
      submit: (outcome, attempt, onSettled) =>
        Effect.flatMap(Clock.currentTimeMillis, (now) =>
          Effect.asVoid(Effect.sync(() => offer(outcome, attempt, now, onSettled))),
        ),
      barrier: Effect.flatMap(Deferred.make<void>(), (done) =>
        Effect.zipRight(
          Effect.sync(() => push({ _tag: "Barrier", done })),
          Deferred.await(done),
        ),
      ),
      run,
      flushRemaining,
    } satisfies Completer
  })
