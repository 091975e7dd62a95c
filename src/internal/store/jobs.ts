/**
 * The jobs table on the path every job takes: insert, claim, and write the outcome back. These
 * statements run thousands of times a second, so they are prepared where they can be and take
 * one parameter where they act on many jobs (an array, or JSON read with
 * `jsonb_to_recordset`), so a batch is one round trip.
 */
import type { SqlError } from "@effect/sql/SqlError"
import type { Effect } from "effect"
import type { JobRecord, JobState } from "../../JobRecord.js"
import type { ClaimPosition } from "../queue/claimPosition.js"
import * as Claim from "./claim.js"
import type { StoreContext } from "./context.js"
import * as Finish from "./finish.js"
import * as Insert from "./insert.js"
import type { Outcome, SerializedOutcome } from "./outcomes.js"

/** Jobs inserted together: one definition and one set of options, many args. */
export interface NewJobs {
  readonly queue: string
  readonly type: string
  readonly state: "available" | "scheduled"
  readonly priority: number
  readonly maxAttempts: number
  readonly meta: Record<string, unknown>
  readonly scheduledAt: Date
  /** The encoded args of each job. */
  readonly args: ReadonlyArray<unknown>
  /** The same, serialized once: insert measures their size from it and sends it as is. */
  readonly argsJson: ReadonlyArray<string>
  /** The resource every job of the batch is aimed at, if any. */
  readonly resource?: { readonly type: string; readonly id: string } | undefined
}

export interface QueueLimits {
  /** At most this many jobs of the queue executing across all nodes. */
  readonly global?: number | undefined
  /** At most `limit` attempts started per `periodMillis`, across all nodes. */
  readonly rate?: { readonly limit: number; readonly periodMillis: number } | undefined
}

/** A job of a unique insert: the new record, or the job that holds its key (`conflict: true`). */
export interface UniqueInsert {
  readonly record: JobRecord
  readonly conflict: boolean
}

export interface JobsStore {
  /** Inserts the batch in one statement; answers the records, in the order of `args`. */
  readonly insert: (batch: NewJobs, now: Date) => Effect.Effect<ReadonlyArray<JobRecord>, SqlError>
  /**
   * Inserts the jobs whose key is not taken by a job in one of `states`, in one statement (the
   * unique index settles races); answers, for each job given, what `UniqueInsert` says.
   */
  readonly insertUnique: (
    batch: NewJobs,
    keys: ReadonlyArray<string>,
    states: ReadonlyArray<JobState>,
    now: Date,
  ) => Effect.Effect<ReadonlyArray<UniqueInsert>, SqlError>
  /**
   * Claims up to `limit` available jobs of the queue for `node` under `lease`, of which at most
   * `suspects` were rescued before; the others come after `after` in the claim order.
   */
  readonly claim: (
    queue: string,
    limit: number,
    node: string,
    lease: string,
    now: Date,
    suspects?: number,
    after?: ClaimPosition,
  ) => Effect.Effect<ReadonlyArray<JobRecord>, SqlError>
  /** A claim that respects the queue's cluster-wide limits. */
  readonly claimLimited: (
    queue: string,
    demand: number,
    node: string,
    lease: string,
    now: Date,
    limits: QueueLimits,
    suspects?: number,
  ) => Effect.Effect<ReadonlyArray<JobRecord>, SqlError>
  /**
   * The jobs a claim with this lease took. After a claim failed on a broken connection it is
   * unknown whether it committed; if it did, its jobs are found here instead of being left
   * `executing` with nobody running them.
   */
  readonly claimedWith: (lease: string) => Effect.Effect<ReadonlyArray<JobRecord>, SqlError>
  /**
   * Claims these jobs, if they are available, scheduled or retryable, whatever their queue
   * and due time; for the testing layer, where the test says what runs.
   */
  readonly claimIds: (
    ids: ReadonlyArray<number>,
    node: string,
    lease: string,
    now: Date,
  ) => Effect.Effect<ReadonlyArray<JobRecord>, SqlError>
  /** An outcome ready for `finishSerialized`. Throws when it cannot be stored. */
  readonly serialize: (outcome: Outcome, at: Date) => SerializedOutcome
  /** Writes serialized outcomes, each guarded by its lease; answers the ids they applied to. */
  readonly finishSerialized: (
    outcomes: ReadonlyArray<SerializedOutcome>,
  ) => Effect.Effect<ReadonlySet<number>, SqlError>
  /** `serialize` then `finishSerialized`. */
  readonly finish: (
    outcomes: ReadonlyArray<Outcome>,
    now: Date,
  ) => Effect.Effect<ReadonlySet<number>, SqlError>
}

export const make = (ctx: StoreContext): JobsStore => ({
  ...Insert.make(ctx),
  ...Claim.make(ctx),
  ...Finish.make(ctx),
})
