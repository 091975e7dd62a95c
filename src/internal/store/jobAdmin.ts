/**
 * The jobs table as an operator sees it: read, cancel, retry and delete one job,
 * summarize a queue, and act on the jobs aimed at one resource.
 */
import type { SqlError } from "@effect/sql/SqlError"
import { Effect } from "effect"
import type { JobRecord, JobState } from "../../JobRecord.js"
import type { StoreContext } from "./context.js"
import { columns, recordFromRow, toDateOrNull } from "./records.js"
import { boundedStateCounts, listingCountBound } from "./stats.js"

/** A job after a transition that may or may not have applied. */
export interface Transition {
  /** False when the job's state was not one the transition applies to. */
  readonly changed: boolean
  /** The state before. */
  readonly previous: JobState
  /** The row after the change, or as it is when nothing changed. */
  readonly record: JobRecord
}

export interface JobAdminStore {
  readonly get: (id: number) => Effect.Effect<JobRecord | undefined, SqlError>
  /** Cancels a job that has not finished; undefined when there is no such job. */
  readonly cancel: (id: number, now: Date) => Effect.Effect<Transition | undefined, SqlError>
  /** Makes a job that is not running available now, with one more attempt if it used all of its own. */
  readonly retry: (id: number, now: Date) => Effect.Effect<Transition | undefined, SqlError>
  /** Deletes a job unless it is executing; undefined when there is no such job. */
  readonly remove: (
    id: number,
  ) => Effect.Effect<{ readonly state: JobState; readonly deleted: boolean } | undefined, SqlError>
  /** Counts and ages of the queue's jobs, by state. */
  readonly summarize: (queue: string) => Effect.Effect<ReadonlyArray<StateSummary>, SqlError>
  /** How many jobs each queue has in each state (only the pairs that have any), estimated past `listingCountBound`. */
  readonly countByQueueAndState: Effect.Effect<
    ReadonlyArray<{ readonly queue: string; readonly state: JobState; readonly count: number }>,
    SqlError
  >
  /** True while the queue still has jobs that are due or running. */
  readonly hasDueOrRunning: (queue: string) => Effect.Effect<boolean, SqlError>
  /** The jobs aimed at one resource that have not finished, in the order they are due. */
  readonly resourceJobs: (
    resourceType: string,
    resourceId: string,
  ) => Effect.Effect<ReadonlyArray<JobRecord>, SqlError>
  /** Cancels every job aimed at the resource that is still waiting; answers them. */
  readonly cancelResource: (
    resourceType: string,
    resourceId: string,
    now: Date,
  ) => Effect.Effect<ReadonlyArray<JobRecord>, SqlError>
  /**
   * Moves every job aimed at the resource that is still waiting to `at`: scheduled when that
   * is later than `now`, available (and its queue woken) otherwise. Attempts are kept.
   */
  readonly rescheduleResource: (
    resourceType: string,
    resourceId: string,
    at: Date,
    now: Date,
  ) => Effect.Effect<ReadonlyArray<JobRecord>, SqlError>
  /** Whether the job is cancelled as stored: a cancel signal is obeyed only then. */
  readonly isCancelled: (id: number) => Effect.Effect<boolean, SqlError>
}

export interface StateSummary {
  readonly state: JobState
  readonly count: number
  readonly oldest: Date | null
  readonly newest: Date | null
}

/** One job at a time: read, cancel, retry, remove. */
const makeOneJob = ({ sql, jobs }: StoreContext) => {
  const get = (id: number) =>
    // The only read with the job's log: listings would carry up to 100 lines a job.
    Effect.map(sql.unsafe(`SELECT ${columns}, logs FROM ${jobs} WHERE id = $1`, [id]), (rows) =>
      rows.length === 0 ? undefined : recordFromRow(rows[0]),
    )

  /**
   * Moves a job to `to` if its state is one of `from`, in one statement; answers the row
   * after the change, or the unchanged row (or nothing) when it did not apply.
   */
  const transition = (
    id: number,
    from: ReadonlyArray<JobState>,
    set: string,
    params: ReadonlyArray<unknown>,
  ) =>
    Effect.map(
      sql.unsafe<any>(
        `WITH before AS (SELECT id, state FROM ${jobs} WHERE id = $1 FOR UPDATE),
         changed AS (
           UPDATE ${jobs} j SET ${set} FROM before
           WHERE j.id = before.id AND before.state IN (SELECT jsonb_array_elements_text($2::jsonb))
           RETURNING before.state AS previous, ${columns.replace(/(\w+)/g, "j.$1")}
         )
         SELECT true AS changed, previous, ${columns} FROM changed
         UNION ALL
         SELECT false AS changed, state AS previous, ${columns} FROM ${jobs}
         WHERE id = $1 AND NOT EXISTS (SELECT 1 FROM changed)`,
        [id, JSON.stringify(from), ...params],
      ),
      (rows) =>
        rows.length === 0
          ? undefined
          : {
              changed: Boolean(rows[0].changed),
              previous: rows[0].previous as JobState,
              record: recordFromRow(rows[0]),
            },
    )

  const cancel = (id: number, now: Date) =>
    transition(
      id,
      ["scheduled", "available", "retryable", "executing"],
      `state = 'cancelled', cancelled_at = $3::timestamptz, lease = NULL`,
      [now.toISOString()],
    )

  // A job retried by hand gets one more attempt when it has used all of its own.
  const retry = (id: number, now: Date) =>
    transition(
      id,
      ["scheduled", "retryable", "completed", "discarded", "cancelled"],
      `state = 'available', scheduled_at = $3::timestamptz, max_attempts = GREATEST(j.max_attempts, j.attempt + 1),
       completed_at = NULL, cancelled_at = NULL, discarded_at = NULL`,
      [now.toISOString()],
    )

  const remove = (id: number) =>
    Effect.map(
      sql.unsafe<{ id: string; state: JobState; deleted: boolean }>(
        `WITH target AS (SELECT id, state FROM ${jobs} WHERE id = $1 FOR UPDATE),
         deleted AS (DELETE FROM ${jobs} j USING target WHERE j.id = target.id AND target.state <> 'executing' RETURNING j.id)
         SELECT target.id, target.state, EXISTS (SELECT 1 FROM deleted) AS deleted FROM target`,
        [id],
      ),
      (rows) =>
        rows.length === 0 ? undefined : { state: rows[0]!.state, deleted: Boolean(rows[0]!.deleted) },
    )

  /** Whether the job is cancelled as stored: a cancel signal is obeyed only then. */
  const isCancelled = (id: number) =>
    Effect.map(
      sql.unsafe<{ state: JobState }>(`SELECT state FROM ${jobs} WHERE id = $1`, [id]),
      (rows) => rows[0]?.state === "cancelled",
    )

  return { get, cancel, retry, remove, isCancelled }
}

/** Many jobs at once: a queue's summary, and the jobs aimed at one resource. */
const makeManyJobs = (context: StoreContext) => {
  const { sql, jobs, channel } = context
  const summarize = (queue: string) =>
    Effect.map(
      sql.unsafe<{ state: JobState; count: number; oldest: unknown; newest: unknown }>(
        `SELECT state, count(*)::integer AS count, min(inserted_at) AS oldest, max(inserted_at) AS newest
         FROM ${jobs} WHERE queue = $1 GROUP BY state`,
        [queue],
      ),
      (rows): ReadonlyArray<StateSummary> =>
        rows.map((r) => ({
          state: r.state,
          count: Number(r.count),
          oldest: toDateOrNull(r.oldest),
          newest: toDateOrNull(r.newest),
        })),
    )

  const countByQueueAndState = boundedStateCounts(context)(listingCountBound)

  /** True while the queue still has jobs that are due or running. */
  const hasDueOrRunning = (queue: string) =>
    Effect.map(
      sql.unsafe<{ busy: boolean }>(
        `SELECT EXISTS (SELECT 1 FROM ${jobs} WHERE queue = $1 AND state IN ('available', 'executing')) AS busy`,
        [queue],
      ),
      (rows) => Boolean(rows[0]?.busy),
    )

  const pendingStates = `('scheduled', 'available', 'retryable')`

  /** The jobs aimed at one resource that have not finished, in the order they are due. */
  const resourceJobs = (resourceType: string, resourceId: string) =>
    Effect.map(
      sql.unsafe(
        `SELECT ${columns} FROM ${jobs}
         WHERE resource_type = $1 AND resource_id = $2
           AND state IN ('scheduled', 'available', 'retryable', 'executing')
         ORDER BY scheduled_at, id`,
        [resourceType, resourceId],
      ),
      (rows) => rows.map(recordFromRow),
    )

  /** Cancels every job aimed at the resource that is still waiting; answers them. */
  const cancelResource = (resourceType: string, resourceId: string, now: Date) =>
    Effect.map(
      sql.unsafe(
        `UPDATE ${jobs} SET state = 'cancelled', cancelled_at = $3::timestamptz
         WHERE resource_type = $1 AND resource_id = $2 AND state IN ${pendingStates}
         RETURNING ${columns}`,
        [resourceType, resourceId, now.toISOString()],
      ),
      (rows) => rows.map(recordFromRow).sort((a, b) => a.id - b.id),
    )

  /**
   * Moves every job aimed at the resource that is still waiting to `at`: scheduled when that
   * is later than `now`, available (and its queue woken) otherwise. Attempts are kept.
   */
  const rescheduleResource = (resourceType: string, resourceId: string, at: Date, now: Date) =>
    Effect.map(
      sql.unsafe(
        `WITH moved AS (
           UPDATE ${jobs} SET scheduled_at = $3::timestamptz,
             state = CASE WHEN $3::timestamptz > $4::timestamptz THEN 'scheduled' ELSE 'available' END
           WHERE resource_type = $1 AND resource_id = $2 AND state IN ${pendingStates}
           RETURNING ${columns}
         ), woken AS (
           SELECT pg_notify('${channel}', json_build_object('kind', 'insert', 'queue', queue)::text)
           FROM (SELECT DISTINCT queue FROM moved WHERE state = 'available') q
         )
         SELECT moved.* FROM moved LEFT JOIN (SELECT count(*) FROM woken) w ON true`,
        [resourceType, resourceId, at.toISOString(), now.toISOString()],
      ),
      (rows) => rows.map(recordFromRow).sort((a, b) => a.id - b.id),
    )
  return {
    summarize,
    countByQueueAndState,
    hasDueOrRunning,
    resourceJobs,
    cancelResource,
    rescheduleResource,
  }
}

export const make = (ctx: StoreContext): JobAdminStore => ({ ...makeOneJob(ctx), ...makeManyJobs(ctx) })
