/**
 * Bulk actions over everything a filter matches, run in the background in the client's
 * batches, however many jobs that is. Each run has a progress page that the live updates
 * refresh after every batch; the runs are kept in memory (the newest 50) for the lifetime of
 * the dashboard's scope, which interrupts any still running when it closes.
 */
import { randomBytes } from "node:crypto"
import { Clock, Effect, FiberSet, type Scope } from "effect"
import type { JobCount } from "../internal/api/service.js"

export type Verb = "retry" | "cancel" | "discard" | "delete"

export interface Progress {
  readonly selected: number
  readonly changed: number
}

export interface BulkRun {
  readonly id: string
  readonly verb: Verb
  /** What it acts on, in words (`jobs matching queue=mail`). */
  readonly target: string
  /** How many jobs matched when it started (an estimate above the count threshold). */
  readonly total: JobCount
  /** The page the action was started from. */
  readonly back: string
  readonly startedAt: number
  progress: Progress
  outcome:
    | { readonly _tag: "running" }
    | { readonly _tag: "done"; readonly at: number }
    | {
        readonly _tag: "failed"
        readonly at: number
        readonly message: string
      }
}

export interface Bulk {
  /** Starts `action` in the background and answers its run's id. */
  readonly start: (
    run: Omit<BulkRun, "id" | "startedAt" | "progress" | "outcome">,
    action: (onBatch: (progress: Progress) => Effect.Effect<void>) => Effect.Effect<number, unknown>,
    onFailure: (run: BulkRun, message: string) => Effect.Effect<void>,
  ) => Effect.Effect<string>
  readonly get: (id: string) => BulkRun | undefined
}

const kept = 50

/** The runs, and `changed` told of every batch so that open pages refresh. */
export const make = (changed: Effect.Effect<void>): Effect.Effect<Bulk, never, Scope.Scope> =>
  Effect.gen(function* () {
    const fibers = yield* FiberSet.make()
    const runs = new Map<string, BulkRun>()
    const start: Bulk["start"] = (given, action, onFailure) =>
      Effect.gen(function* () {
        const id = randomBytes(8).toString("hex")
        const run: BulkRun = {
          ...given,
          id,
          startedAt: yield* Clock.currentTimeMillis,
          progress: { selected: 0, changed: 0 },
          outcome: { _tag: "running" },
        }
        runs.set(id, run)
        for (const old of Array.from(runs.keys()).slice(0, Math.max(0, runs.size - kept))) runs.delete(old)
        const onBatch = (progress: Progress) =>
          Effect.zipRight(
            Effect.sync(() => {
              run.progress = progress
            }),
            changed,
          )
        yield* FiberSet.run(
          fibers,
          action(onBatch).pipe(
            Effect.matchCauseEffect({
              onSuccess: (count) =>
                Effect.flatMap(Clock.currentTimeMillis, (at) =>
                  Effect.sync(() => {
                    run.progress = { ...run.progress, changed: count }
                    run.outcome = { _tag: "done", at }
                  }),
                ),
              onFailure: (cause) =>
                Effect.gen(function* () {
                  const error = cause._tag === "Fail" ? cause.error : undefined
                  const message =
                    (error as { message?: string } | undefined)?.message ?? "the action stopped unexpectedly"
                  run.outcome = { _tag: "failed", at: yield* Clock.currentTimeMillis, message }
                  yield* onFailure(run, message)
                }),
            }),
            Effect.zipRight(changed),
          ),
        )
        return id
      })
    return { start, get: (id) => runs.get(id) }
  })
