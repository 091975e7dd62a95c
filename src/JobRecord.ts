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

/** What a handler last reported of its progress (`Job.progress`). */
export class JobProgress extends Schema.Class<JobProgress>("JobProgress")({
  /** The attempt that reported it. */
  attempt: Schema.Number,
  /** From 0 to 100. */
  percent: Schema.Number,
  /** What the handler said with it, if anything. */
  note: Schema.NullOr(Schema.String),
  at: Schema.DateFromSelf,
}) {}

/** One line a handler wrote to its job's log (`Job.log`). */
export class JobLogLine extends Schema.Class<JobLogLine>("JobLogLine")({
  attempt: Schema.Number,
  at: Schema.DateFromSelf,
  message: Schema.String,
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
  /**
   * The last progress a handler reported, of whichever attempt reported it; null when none
   * did. Read by `get` and listings; the record a handler is given has none.
   */
  progress: Schema.optionalWith(Schema.NullOr(JobProgress), { default: () => null }),
  /**
   * The newest lines handlers wrote to the job's log, oldest first, across attempts: at most
   * 100, each cut at 2,000 characters, older lines dropped. Read by `get` only: listings and
   * the record a handler is given have none.
   */
  logs: Schema.optionalWith(Schema.Array(JobLogLine), { default: () => [] }),
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
