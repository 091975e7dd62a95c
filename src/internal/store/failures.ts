/**
 * Failed jobs grouped by their last error, for the failures page: the newest of them, read
 * through the indexes of their states, grouped by tag and message pattern.
 */
import type { SqlError } from "@effect/sql/SqlError"
import { Effect } from "effect"
import type { FailureGroup } from "../api/service.js"
import type { StoreContext } from "./context.js"
import { messagePattern } from "./jobQuery.js"
import { toDate } from "./records.js"

export interface FailuresStore {
  /**
   * The newest `scanned` retryable and discarded jobs, grouped by their last error's tag and
   * message pattern, the largest groups first (at most `limit`); and whether there were more
   * failed jobs than `scanned`.
   */
  readonly failureGroups: (
    scanned: number,
    limit: number,
  ) => Effect.Effect<{ readonly groups: ReadonlyArray<FailureGroup>; readonly more: boolean }, SqlError>
}

export const make = ({ jobs, unprepared }: StoreContext): FailuresStore => ({
  // The newest failures: retryable ones through the state index, discarded ones through the
  // finish-time index newest first, so the page never reads every failed job, nor the rest.
  failureGroups: (scanned, limit) =>
    Effect.map(
      unprepared<{
        tag: string
        pattern: string
        example: string
        example_id: string
        retryable: number
        discarded: number
        last_at: Date | string
        scanned: number
      }>(
        `WITH failed AS (
           (SELECT id, state, errors -> -1 AS e FROM ${jobs}
            WHERE state = 'retryable' AND errors <> '[]'::jsonb ORDER BY id DESC LIMIT $1)
           UNION ALL
           (SELECT id, state, errors -> -1 AS e FROM ${jobs}
            WHERE state = 'discarded' AND errors <> '[]'::jsonb
            ORDER BY COALESCE(completed_at, cancelled_at, discarded_at) DESC LIMIT $1)
         ), grouped AS (
           SELECT COALESCE(e ->> 'tag', '') AS tag, ${messagePattern("COALESCE(e ->> 'message', '')")} AS pattern,
             (array_agg(COALESCE(e ->> 'message', '') ORDER BY id DESC))[1] AS example,
             max(id) AS example_id,
             count(*) FILTER (WHERE state = 'retryable')::integer AS retryable,
             count(*) FILTER (WHERE state = 'discarded')::integer AS discarded,
             max((e ->> 'at')::timestamptz) AS last_at
           FROM (SELECT * FROM failed ORDER BY id DESC LIMIT $3) f GROUP BY 1, 2
         )
         SELECT grouped.*, (SELECT count(*)::integer FROM failed) AS scanned FROM grouped
         ORDER BY retryable + discarded DESC, last_at DESC LIMIT $2`,
        [scanned + 1, limit, scanned],
      ),
      (rows) => ({
        groups: rows.map((r) => ({
          tag: r.tag,
          pattern: r.pattern,
          example: r.example,
          exampleId: Number(r.example_id),
          retryable: Number(r.retryable),
          discarded: Number(r.discarded),
          lastAt: toDate(r.last_at),
        })),
        more: rows.some((r) => Number(r.scanned) > scanned),
      }),
    ),
})
