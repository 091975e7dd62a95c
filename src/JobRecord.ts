/**
 * A job as it is stored: its id, its state and everything that happened to it.
 */
import { Schema } from "effect"
import type * as Job from "./Job.js"

export const JobId = Schema.Number.pipe(Schema.int(), Schema.positive(), Schema.brand("JobId"))
export type JobId = typeof JobId.Type

/**
 * The life of a job: `scheduled` (waiting for its time) or `available` (due) → `executing` →
 * `completed`, or `retryable` (failed, waiting for its backoff) and back, until it is
 * `discarded` (out of attempts) or `cancelled`.
 */
export const JobState = Schema.Literal(
  "scheduled",
  "available",
  "executing",
  "retryable",
  "completed",
  "discarded",
  "cancelled",
)
export type JobState = typeof JobState.Type

export const terminalStates: ReadonlyArray<JobState> = ["completed", "discarded", "cancelled"]

/** One failed attempt, kept in the job's `errors`. */
export class AttemptError extends Schema.Class<AttemptError>("AttemptError")({
  attempt: Schema.Number,
  at: Schema.DateFromSelf,
  /** The failure's `_tag` when it had one (`JobTimeout`, `UnknownJobType`, your own tags …), `Defect` for a defect. */
  tag: Schema.String,
  message: Schema.String,
  /** `Cause.pretty` of the failure: stack traces included. */
  cause: Schema.String,
}) {}

export class JobRecord extends Schema.Class<JobRecord>("JobRecord")({
  id: JobId,
  queue: Schema.String,
  type: Schema.String,
  args: Schema.Unknown,
  state: JobState,
  priority: Schema.Number,
  attempt: Schema.Number,
  maxAttempts: Schema.Number,
  /** How often the job was found orphaned by a node that died while running it. */
  rescues: Schema.Number,
  errors: Schema.Array(AttemptError),
  result: Schema.NullOr(Schema.Unknown),
  meta: Schema.Record({ key: Schema.String, value: Schema.Unknown }),
  scheduledAt: Schema.DateFromSelf,
  attemptedAt: Schema.NullOr(Schema.DateFromSelf),
  attemptedBy: Schema.NullOr(Schema.String),
  completedAt: Schema.NullOr(Schema.DateFromSelf),
  cancelledAt: Schema.NullOr(Schema.DateFromSelf),
  discardedAt: Schema.NullOr(Schema.DateFromSelf),
  insertedAt: Schema.DateFromSelf,
  /** The kind of resource the job is aimed at (its definition's `resource`), if any. */
  resourceType: Schema.NullOr(Schema.String),
  /** The id of the resource the job is aimed at, given at insert. */
  resourceId: Schema.NullOr(Schema.String),
}) {
  get isTerminal(): boolean {
    return terminalStates.includes(this.state)
  }
}

/**
 * A job read through its definition (`jobs.get(id, SendEmail)`): its args and result decoded
 * with the definition's Schemas and typed by them.
 */
export type Typed<D extends Job.Definition> = Omit<JobRecord, "args" | "result"> & {
  readonly args: Job.Args<D>
  /** The decoded result of a completed job of a definition with a `result`; null otherwise. */
  readonly result: Job.Result<D> | null
}
