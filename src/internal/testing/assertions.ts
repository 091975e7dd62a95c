/**
 * What `assertEnqueued`, `refuteEnqueued` and `allEnqueued` compare: a job of a definition,
 * its args decoded with the definition's Schema and matched in part, and its other columns.
 * A failure lists the jobs that were there, so the test's output shows what went wrong.
 */
import { Duration, Either, Equal, Schema } from "effect"
import type * as Job from "../../Job.js"
import type { JobRecord, JobState } from "../../JobRecord.js"

/** Part of a value: objects match on the keys given, recursively; anything else in full. */
export type Part<A> = A extends Date
  ? A
  : A extends ReadonlyArray<any>
    ? A
    : A extends object
      ? { readonly [K in keyof A]?: Part<A[K]> }
      : A

export interface Match<Args> {
  /** The args, decoded, in part: `{ to: "a@example.com" }` matches whatever else they hold. */
  readonly args?: Part<Args> | undefined
  readonly queue?: string | undefined
  readonly priority?: number | undefined
  /** The meta, in part. */
  readonly meta?: Record<string, unknown> | undefined
  /** The resource id the job is aimed at. */
  readonly resource?: string | undefined
  /** Defaults to `["available", "scheduled"]`: the jobs waiting to run. */
  readonly state?: JobState | ReadonlyArray<JobState> | undefined
  /** Due at this time, give or take `tolerance`. */
  readonly scheduledAt?: Date | undefined
  /** Due this long after now (the Clock's), give or take `tolerance`. */
  readonly scheduledIn?: Duration.DurationInput | undefined
  /** For `scheduledAt` and `scheduledIn`. Defaults to 1 second. */
  readonly tolerance?: Duration.DurationInput | undefined
}

/** A stored job with its args decoded. */
export type Enqueued<Args> = Omit<JobRecord, "args"> & { readonly args: Args }

export const defaultStates: ReadonlyArray<JobState> = ["available", "scheduled"]

export const statesOf = (match: Match<unknown>): ReadonlyArray<JobState> =>
  match.state === undefined ? defaultStates : typeof match.state === "string" ? [match.state] : match.state

const isPlainObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === "object" &&
  value !== null &&
  (Object.getPrototypeOf(value) === Object.prototype || Object.getPrototypeOf(value) === null)

/** Whether `actual` holds what `expected` says, objects compared on `expected`'s keys only. */
export const matchesPart = (expected: unknown, actual: unknown): boolean => {
  if (expected instanceof Date) return actual instanceof Date && actual.getTime() === expected.getTime()
  if (Array.isArray(expected)) {
    return (
      Array.isArray(actual) &&
      actual.length === expected.length &&
      expected.every((item, i) => matchesPart(item, actual[i]))
    )
  }
  if (isPlainObject(expected)) {
    return (
      typeof actual === "object" &&
      actual !== null &&
      Object.entries(expected).every(([key, value]) =>
        matchesPart(value, (actual as Record<string, unknown>)[key]),
      )
    )
  }
  return Equal.equals(expected, actual) || Object.is(expected, actual)
}

/** The job with its args decoded, or undefined when they do not decode (a job this test cannot match). */
export const decode = <Args>(
  definition: Job.Definition<string, Args>,
  job: JobRecord,
): Enqueued<Args> | undefined => {
  const args = Schema.decodeUnknownEither(definition.argsSchema)(job.args)
  if (Either.isLeft(args)) return undefined
  return Object.assign(Object.create(Object.getPrototypeOf(job)), job, { args: args.right })
}

/** Why the job does not match, or undefined when it does. */
export const mismatch = <Args>(match: Match<Args>, job: Enqueued<Args>, now: number): string | undefined => {
  if (!statesOf(match as Match<unknown>).includes(job.state)) return "state"
  if (match.queue !== undefined && job.queue !== match.queue) return "queue"
  if (match.priority !== undefined && job.priority !== match.priority) return "priority"
  if (match.resource !== undefined && job.resourceId !== match.resource) return "resource"
  if (match.meta !== undefined && !matchesPart(match.meta, job.meta)) return "meta"
  if (match.args !== undefined && !matchesPart(match.args, job.args)) return "args"
  const tolerance = Duration.toMillis(match.tolerance ?? Duration.seconds(1))
  const due =
    match.scheduledAt !== undefined
      ? match.scheduledAt.getTime()
      : match.scheduledIn !== undefined
        ? now + Duration.toMillis(match.scheduledIn)
        : undefined
  if (due !== undefined && Math.abs(job.scheduledAt.getTime() - due) > tolerance) return "scheduledAt"
  return undefined
}

const show = (value: unknown): string => {
  try {
    return JSON.stringify(value) ?? String(value)
  } catch {
    return String(value)
  }
}

/** The match as a test wrote it, on one line. */
export const describeMatch = (match: Match<unknown>): string => {
  const parts: Array<string> = []
  if (match.args !== undefined) parts.push(`args ${show(match.args)}`)
  for (const key of ["queue", "priority", "resource", "meta"] as const) {
    if (match[key] !== undefined) parts.push(`${key} ${show(match[key])}`)
  }
  if (match.scheduledAt !== undefined) parts.push(`scheduledAt ${match.scheduledAt.toISOString()}`)
  if (match.scheduledIn !== undefined)
    parts.push(`scheduledIn ${Duration.format(Duration.decode(match.scheduledIn))}`)
  if (match.tolerance !== undefined)
    parts.push(`tolerance ${Duration.format(Duration.decode(match.tolerance))}`)
  parts.push(`state ${statesOf(match).join(" or ")}`)
  return parts.join(", ")
}

/** One job, on one line, as a failure message lists it. */
export const describeJob = (job: JobRecord): string => {
  const resource = job.resourceId === null ? "" : ` resource=${job.resourceType}:${job.resourceId}`
  return `#${job.id} ${job.type} ${job.state} queue=${job.queue} priority=${job.priority} scheduledAt=${job.scheduledAt.toISOString()}${resource} args=${show(job.args)} meta=${show(job.meta)}`
}

/** The jobs found, listed under a heading; at most 20 of them. */
export const listJobs = (heading: string, jobs: ReadonlyArray<JobRecord>): string => {
  if (jobs.length === 0) return `${heading}: none`
  const shown = jobs.slice(0, 20).map((job) => `  ${describeJob(job)}`)
  if (jobs.length > 20) shown.push(`  … and ${jobs.length - 20} more`)
  return `${heading}:\n${shown.join("\n")}`
}
