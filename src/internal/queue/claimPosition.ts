/**
 * A place in a queue's claim order (higher priority first, then due time, then id): where a dispatcher's
 * next claim starts reading the claim index.
 *
 * The entries of claimed jobs stay in that index, dead, until a vacuum removes them, and a
 * claim from the start walks past all of them. So a dispatcher claims from just after the
 * last job it claimed, or from the end once it has taken everything there was. Jobs that
 * become available before that position send a signal that says where they are (inserts,
 * staged jobs), and the position moves back to them; any other signal, and every poll
 * interval, sends the next claim back to the start, which is how jobs made available with
 * no signal (a claim that rolled back, a job released by a stopping node) are still found.
 */
import type { JobRecord } from "../../JobRecord.js"

export interface ClaimPosition {
  readonly priority: number
  /** The due time, in epoch milliseconds rounded down: at or before the job's own. */
  readonly at: number
  readonly id: number
}

/** Before every job: priorities are at most 32,767. */
export const claimStart: ClaimPosition = { priority: 32768, at: Number.NEGATIVE_INFINITY, id: 0 }

/** After every job. */
export const claimEnd: ClaimPosition = {
  priority: -32768,
  at: Number.POSITIVE_INFINITY,
  id: Number.MAX_SAFE_INTEGER,
}

/** The claim order over its three fields, shared by positions and claimed records. */
const order = (ap: number, aAt: number, aId: number, bp: number, bAt: number, bId: number): number =>
  bp - ap || (aAt < bAt ? -1 : aAt > bAt ? 1 : 0) || aId - bId

/** Sorts claimed records as the claim took them. */
export const byClaimOrder = (a: JobRecord, b: JobRecord): number =>
  order(a.priority, a.scheduledAt.getTime(), a.id, b.priority, b.scheduledAt.getTime(), b.id)

export const compare = (a: ClaimPosition, b: ClaimPosition): number =>
  order(a.priority, a.at, a.id, b.priority, b.at, b.id)

export const earlier = (a: ClaimPosition, b: ClaimPosition): ClaimPosition => (compare(a, b) <= 0 ? a : b)

/** Where a claimed job stands in the claim order. */
export const positionOf = (job: JobRecord): ClaimPosition => ({
  priority: job.priority,
  at: job.scheduledAt.getTime(),
  id: job.id,
})

/**
 * Where the next claim starts after a claim of up to `limit` jobs from `from` got `jobs`: just
 * past the furthest of them, or the end when it got fewer than it asked for.
 */
export const afterClaim = (
  from: ClaimPosition,
  limit: number,
  jobs: ReadonlyArray<JobRecord>,
): ClaimPosition => {
  // The furthest job is kept as a record, and only it becomes a position: a claim of
  // thousands would otherwise build a position object for every one.
  let last: JobRecord | undefined
  let others = 0
  for (const job of jobs) {
    // Suspects come from an index of their own, wherever they stand in the order.
    if (job.rescues > 0) continue
    others++
    if (last === undefined || after(job, last)) last = job
  }
  // Short of what it asked for, the claim took every job there was past `from` (but those
  // another claim held locked): the next one has only what signals point back to.
  if (others < limit - (jobs.length - others)) return claimEnd
  return last === undefined ? from : positionOf(last)
}

/** Whether job `a` comes after job `b` in the claim order. */
const after = (a: JobRecord, b: JobRecord): boolean =>
  order(a.priority, a.scheduledAt.getTime(), a.id, b.priority, b.scheduledAt.getTime(), b.id) > 0

/**
 * One dispatcher's claim position. `position` follows the claims; `signalled` is the earliest
 * place signals pointed to since the last claim began (the start, for a signal that gave no
 * place). Every poll interval a claim reads from the start anyway, so nothing a lost signal
 * pointed to waits longer than that.
 */
export const makeCursor = (pollMillis: number) => {
  let position: ClaimPosition = claimStart
  let signalled: ClaimPosition | undefined
  let lastFromStart = Number.NEGATIVE_INFINITY
  return {
    /** Jobs became available at `at`: the next claim starts there at the latest. */
    signal: (at: ClaimPosition) => {
      signalled = signalled === undefined ? at : earlier(signalled, at)
    },
    /** Where a claim beginning now starts. */
    startOfClaim: (now: number): ClaimPosition => {
      const from =
        now - lastFromStart >= pollMillis
          ? claimStart
          : signalled === undefined
            ? position
            : earlier(position, signalled)
      if (compare(from, claimStart) === 0) lastFromStart = now
      signalled = undefined
      return from
    },
    /** A claim of up to `limit` jobs from `from` got `jobs`. */
    claimed: (from: ClaimPosition, limit: number, jobs: ReadonlyArray<JobRecord>) => {
      position = afterClaim(from, limit, jobs)
    },
  }
}
