/**
 * Where a dispatcher's next claim starts: past the furthest job the last claim got, or the
 * end once it got everything there was.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { afterClaim, claimEnd, claimStart } from "../../src/internal/queue/claimPosition.js"
import type { JobRecord } from "../../src/JobRecord.js"

// Only the fields of the claim order and `rescues` matter here.
const job = (id: number, priority: number, at: number, rescues = 0) =>
  ({ id, priority, scheduledAt: new Date(at), rescues }) as unknown as JobRecord

describe("afterClaim", () => {
  it.effect(
    "goes on just past the furthest job of a full claim, by priority (higher first), then due time, then id",
    () =>
      Effect.sync(() => {
        // Rows come back in no particular order.
        const jobs = [job(7, 1, 5_000), job(3, 0, 1_000), job(9, 0, 1_000), job(8, 0, 900), job(1, 2, 9_000)]
        expect(afterClaim(claimStart, 5, jobs)).toEqual({ priority: 0, at: 1_000, id: 9 })
        // A negative priority comes after zero.
        expect(afterClaim(claimStart, 2, [job(5, -1, 0), job(6, 0, 9_000)])).toEqual({
          priority: -1,
          at: 0,
          id: 5,
        })
        // A later due time outranks a higher id at the same priority.
        expect(afterClaim(claimStart, 2, [job(50, 3, 2_000), job(40, 3, 2_001)])).toEqual({
          priority: 3,
          at: 2_001,
          id: 40,
        })
      }),
  )

  it.effect("goes to the end when the claim got fewer jobs than it asked for", () =>
    Effect.sync(() => {
      expect(afterClaim(claimStart, 10, [job(1, 0, 0), job(2, 0, 0)])).toEqual(claimEnd)
      expect(afterClaim(claimStart, 10, [])).toEqual(claimEnd)
    }),
  )

  it.effect("leaves suspects out, since they come from an index of their own", () =>
    Effect.sync(() => {
      const from = { priority: 0, at: 100, id: 4 }
      // Two others and a suspect far ahead of them in the order: a full claim of three.
      const jobs = [job(5, 0, 200), job(99, 9, 99_999, 1), job(6, 0, 300)]
      expect(afterClaim(from, 3, jobs)).toEqual({ priority: 0, at: 300, id: 6 })
      // A full claim of suspects alone leaves the position where it was.
      expect(afterClaim(from, 1, [job(99, 9, 99_999, 1)])).toEqual(from)
    }),
  )
})
