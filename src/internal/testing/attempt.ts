/**
 * One attempt of a job, run as a queue runs it: the dispatcher's `perform` (handler, timeout),
 * then the outcome policy's decision. Nothing is written here; the caller writes the decision
 * when the job is stored, and a test reads the tagged outcome.
 */
import { Clock, Effect, type Exit } from "effect"
import * as Backoff from "../../Backoff.js"
import type * as Job from "../../Job.js"
import type { JobRecord } from "../../JobRecord.js"
import { decideOutcome } from "../queue/outcome.js"
import { perform } from "../queue/workerPool.js"
import type { Outcome as StoredOutcome } from "../store/store.js"
import { classify, type Outcome } from "./outcome.js"

export interface Attempt {
  /** What the runtime would write back. */
  readonly stored: StoredOutcome
  readonly outcome: Outcome
  /** How the handler's effect ended. */
  readonly exit: Exit.Exit<unknown, unknown>
}

/**
 * Runs `job` (claimed under `lease`) with the handler registered for its type; with no attempt
 * left it moves to `deadLetter`, when given, instead of being discarded. The handlers'
 * services come from the caller's context: the dispatcher's `perform` leaves them untyped.
 */
export const run = (
  handlers: ReadonlyMap<string, Job.Handler<any>>,
  node: string,
  job: JobRecord,
  lease: string,
  deadLetter?: string,
): Effect.Effect<Attempt> =>
  Effect.gen(function* () {
    const exit = yield* Effect.exit(perform(handlers, node, job, false))
    const now = yield* Clock.currentTimeMillis
    const definition = handlers.get(job.type)?.definition
    const stored = yield* decideOutcome(
      job,
      lease,
      exit,
      now,
      definition?.backoff ?? Backoff.defaultBackoff,
      deadLetter,
    )
    const outcome = yield* classify(definition, job, exit, stored)
    return { stored, outcome, exit }
  })
