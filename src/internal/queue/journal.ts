/**
 * What handlers report while they run (`Job.progress`, `Job.log`), on its way to their jobs'
 * rows. Reports are throttled per job: the first is written at once, the next at most once per
 * interval, the last progress winning and the lines in between going out together; whatever
 * is left is written when the attempt ends, before its outcome. A job that never reports
 * costs nothing here.
 */
import { Clock, Context, Duration, Effect, Fiber, FiberRef, FiberSet, type Scope } from "effect"
import type { JobRecord } from "../../JobRecord.js"
import { maxLogLineLength, maxLogLines } from "../store/journal.js"
import type { Store } from "../store/store.js"

/** One job's reports since its last write. */
class Pending {
  progress: { percent: number; note: string | null; at: Date } | undefined = undefined
  lines: Array<{ at: Date; message: string }> = []
  lastWrite = Number.NEGATIVE_INFINITY
  /** The write waiting for the end of the interval, or running. */
  flusher: Fiber.RuntimeFiber<void> | undefined = undefined

  constructor(
    readonly id: number,
    readonly attempt: number,
  ) {}

  get isEmpty(): boolean {
    return this.progress === undefined && this.lines.length === 0
  }
}

export interface Journal {
  /** Records a report of the attempt `job` is in; written at once or at the end of the interval. */
  readonly report: (
    job: JobRecord,
    progress: { readonly percent: number; readonly note: string | null } | undefined,
    line: string | undefined,
  ) => Effect.Effect<void>
  /** At the end of an attempt, before its outcome: writes what it left, if it reported anything. */
  readonly flush: (job: JobRecord) => Effect.Effect<void> | undefined
  /** Forgets an attempt that ended without `flush` (it was interrupted). */
  readonly forget: (job: JobRecord) => void
  /** How many attempts it holds reports or a pending write for. */
  readonly held: () => number
}

/**
 * The journal of the runtime whose attempt this fiber runs: in the context the attempts are
 * forked with, which every attempt's fiber carries anyway (a FiberRef of its own would add an
 * entry that every fork copies).
 */
export class CurrentJournal extends Context.Tag("effect-jobs/internal/CurrentJournal")<
  CurrentJournal,
  Journal
>() {}
/** The job this fiber runs an attempt of, set on each attempt's fiber. */
export const currentJob = FiberRef.unsafeMake<JobRecord | undefined>(undefined)

export const make = (store: Store, interval: Duration.Duration): Effect.Effect<Journal, never, Scope.Scope> =>
  Effect.gen(function* () {
    const intervalMillis = Duration.toMillis(interval)
    const flushers = yield* FiberSet.make<void>()
    const entries = new Map<number, Pending>()

    // Reports are best effort: a write that fails is logged, and its reports are lost.
    const write = (entry: Pending) =>
      Effect.suspend(() => {
        if (entry.isEmpty) return Effect.void
        const { progress, lines } = entry
        entry.progress = undefined
        entry.lines = []
        return Effect.flatMap(Clock.currentTimeMillis, (now) => {
          entry.lastWrite = now
          return store.writeJournal({ id: entry.id, attempt: entry.attempt, progress, lines })
        }).pipe(
          Effect.catchAll((error) =>
            Effect.logWarning(`could not store the progress and log of job ${entry.id}: ${error.message}`),
          ),
          Effect.asVoid,
        )
      })

    /**
     * Writes the entry's reports when its interval allows, and again each interval while reports
     * keep coming. An interval without any ends it and drops the entry, so an entry outlives its
     * last report by one interval at most, also one a fiber reported after its attempt ended.
     */
    const schedule = (entry: Pending, now: number) =>
      Effect.map(
        FiberSet.run(
          flushers,
          Effect.gen(function* () {
            yield* Effect.sleep(Math.max(0, entry.lastWrite + intervalMillis - now))
            while (!entry.isEmpty) {
              yield* Effect.uninterruptible(write(entry))
              yield* Effect.sleep(intervalMillis)
            }
          }).pipe(
            Effect.ensuring(
              Effect.sync(() => {
                entry.flusher = undefined
                if (entry.isEmpty && entries.get(entry.id) === entry) entries.delete(entry.id)
              }),
            ),
          ),
        ),
        (fiber) => {
          // A flusher that finished at once has cleared its own slot already.
          if (fiber.unsafePoll() === null) entry.flusher = fiber
        },
      )

    const report: Journal["report"] = (job, progress, line) =>
      Effect.flatMap(Clock.currentTimeMillis, (now) => {
        let entry = entries.get(job.id)
        if (entry === undefined || entry.attempt !== job.attempt) {
          entry = new Pending(job.id, job.attempt)
          entries.set(job.id, entry)
        }
        const at = new Date(now)
        if (progress !== undefined) entry.progress = { ...progress, at }
        if (line !== undefined) {
          entry.lines.push({
            at,
            message: line.length > maxLogLineLength ? line.slice(0, maxLogLineLength) : line,
          })
          if (entry.lines.length > maxLogLines) entry.lines.shift()
        }
        return entry.flusher === undefined ? schedule(entry, now) : Effect.void
      })

    const flush: Journal["flush"] = (job) => {
      if (entries.size === 0) return undefined
      const entry = entries.get(job.id)
      if (entry === undefined || entry.attempt !== job.attempt) return undefined
      entries.delete(job.id)
      const waiting = entry.flusher
      // Interrupting a flusher that is writing waits for its write, which is uninterruptible.
      return Effect.zipRight(waiting === undefined ? Effect.void : Fiber.interrupt(waiting), write(entry))
    }

    const forget: Journal["forget"] = (job) => {
      if (entries.size === 0) return
      const entry = entries.get(job.id)
      if (entry !== undefined && entry.attempt === job.attempt) entries.delete(job.id)
    }

    return { report, flush, forget, held: () => entries.size }
  })
