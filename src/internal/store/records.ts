/**
 * Rows of the jobs table as `JobRecord`s. Rows come from our own table, so they are trusted.
 */
import { AttemptError, type JobId, JobLogLine, JobProgress, JobRecord } from "../../JobRecord.js"
import type { NewJobs } from "./jobs.js"

export const toDate = (u: unknown): Date => (u instanceof Date ? u : new Date(u as string | number))
export const toDateOrNull = (u: unknown): Date | null => (u === null || u === undefined ? null : toDate(u))

/**
 * The Schema.Class constructor, even with validation off, merges defaults field by field, a
 * cost paid per job; records are built on the class's prototype directly (the constructor
 * only assigns fields), always in the same order so that they share one shape.
 */
const recordPrototype = JobRecord.prototype

const noLogs: ReadonlyArray<JobLogLine> = []

const buildRecord = (row: any, claimedAt: Date | undefined, claimedBy: string | undefined): JobRecord => {
  const record = Object.create(recordPrototype)
  record.id = Number(row.id) as JobId
  record.queue = row.queue
  record.type = row.type
  // Both engines hand back json and jsonb parsed; a JSON string value arrives as a JS string.
  record.args = row.args
  record.state = claimedAt === undefined ? row.state : "executing"
  record.priority = Number(row.priority)
  record.attempt = Number(row.attempt)
  record.maxAttempts = Number(row.max_attempts)
  record.rescues = Number(row.rescues ?? 0)
  const errors = row.errors as Array<any>
  record.errors =
    errors.length === 0
      ? errors
      : errors.map((e) => new AttemptError({ ...e, at: toDate(e.at) }, { disableValidation: true }))
  record.result = row.result ?? null
  record.meta = row.meta ?? {}
  record.scheduledAt = toDate(row.scheduled_at)
  record.attemptedAt = claimedAt ?? toDateOrNull(row.attempted_at)
  record.attemptedBy = claimedBy ?? row.attempted_by ?? null
  record.completedAt = toDateOrNull(row.completed_at)
  record.cancelledAt = toDateOrNull(row.cancelled_at)
  record.discardedAt = toDateOrNull(row.discarded_at)
  record.insertedAt = toDate(row.inserted_at)
  record.resourceType = row.resource_type ?? null
  record.resourceId = row.resource_id ?? null
  record.progress = row.progress == null ? null : progressFrom(row.progress)
  record.logs = row.logs == null || row.logs.length === 0 ? noLogs : row.logs.map(logLineFrom)
  return record
}

const progressFrom = (p: any): JobProgress =>
  new JobProgress(
    { attempt: Number(p.attempt), percent: Number(p.percent), note: p.note ?? null, at: toDate(p.at) },
    { disableValidation: true },
  )

const logLineFrom = (l: any): JobLogLine =>
  new JobLogLine(
    { attempt: Number(l.attempt), at: toDate(l.at), message: String(l.message) },
    { disableValidation: true },
  )

/**
 * A claimed job's record: what the claim returned, plus what it just wrote (known here, so not
 * read back).
 */
export const claimedRecord = (row: any, now: Date, node: string): JobRecord => buildRecord(row, now, node)

export const recordFromRow = (row: any): JobRecord => buildRecord(row, undefined, undefined)

/** Every column of a job, in the order `buildRecord` reads them. */
export const columns = `id, queue, type, args, state, priority, attempt, max_attempts, rescues, errors, result, meta, lease,
  scheduled_at, attempted_at, attempted_by, completed_at, cancelled_at, discarded_at, inserted_at, resource_type, resource_id,
  progress`
/**
 * Everything in an inserted job's record but its id is what was just sent. Built field by
 * field in buildRecord's order: a bulk insert builds thousands at once.
 */
export const insertedRecord = (batch: NewJobs, args: unknown, id: number, now: Date): JobRecord => {
  const record = Object.create(recordPrototype)
  record.id = id as JobId
  record.queue = batch.queue
  record.type = batch.type
  record.args = args
  record.state = batch.state
  record.priority = batch.priority
  record.attempt = 0
  record.maxAttempts = batch.maxAttempts
  record.rescues = 0
  record.errors = []
  record.result = null
  record.meta = batch.meta
  record.scheduledAt = batch.scheduledAt
  record.attemptedAt = null
  record.attemptedBy = null
  record.completedAt = null
  record.cancelledAt = null
  record.discardedAt = null
  record.insertedAt = now
  record.resourceType = batch.resource?.type ?? null
  record.resourceId = batch.resource?.id ?? null
  record.progress = null
  record.logs = noLogs
  return record
}
