/**
 * Outcomes written back to the jobs table, each guarded by the lease of the claim it ends.
 */
import type { SqlError } from "@effect/sql/SqlError"
import { Effect } from "effect"
import type { StoreContext } from "./context.js"
import type { JobsStore } from "./jobs.js"
import { type Outcome, type SerializedOutcome, serializeOutcome } from "./outcomes.js"

export const make = ({
  schema,
  keepCompleted,
  hot,
}: StoreContext): Pick<JobsStore, "serialize" | "finishSerialized" | "finish"> => {
  // The outcome writers are functions (migration 10) so that their plans do not follow the
  // table's statistics or a plan cached while the table was small. Each answers the ids it
  // applied to: those whose lease still held.
  const finishText = `SELECT id FROM ${schema}.finish_jobs($1::jsonb) AS id`
  const finishCompletedText = `SELECT id FROM ${schema}.complete_jobs($1::bigint[], $2::uuid[], $3::timestamptz[]) AS id`
  const finishDeletedText = `SELECT id FROM ${schema}.delete_jobs($1::bigint[], $2::uuid[]) AS id`
  /**
   * Writes outcomes serialized with `serializeOutcome`: plain completions in one statement,
   * the rest in another, each guarded by the lease. Answers the ids they applied to.
   */
  const finishSerialized = (
    outcomes: ReadonlyArray<SerializedOutcome>,
  ): Effect.Effect<ReadonlySet<number>, SqlError> =>
    Effect.suspend(() => {
      const ids: Array<number> = []
      const leases: Array<string> = []
      const ats: Array<string> = []
      const documents: Array<string> = []
      for (const outcome of outcomes) {
        if (typeof outcome === "string") documents.push(outcome)
        else {
          ids.push(outcome.id)
          leases.push(outcome.lease)
          ats.push(outcome.at)
        }
      }
      const applied = new Set<number>()
      const collect = (rows: ReadonlyArray<{ id: string }>) => {
        for (const row of rows) applied.add(Number(row.id))
      }
      // Array literals of ids, uuids and ISO times need no quoting.
      const completions =
        ids.length === 0
          ? Effect.void
          : Effect.map(
              keepCompleted
                ? hot<{ id: string }>(finishCompletedText, [
                    `{${ids.join(",")}}`,
                    `{${leases.join(",")}}`,
                    `{${ats.join(",")}}`,
                  ])
                : hot<{ id: string }>(finishDeletedText, [`{${ids.join(",")}}`, `{${leases.join(",")}}`]),
              collect,
            )
      const others =
        documents.length === 0
          ? Effect.void
          : Effect.map(hot<{ id: string }>(finishText, [`[${documents.join(",")}]`]), collect)
      return Effect.as(Effect.zipRight(completions, others), applied)
    })

  /** An outcome ready for `finishSerialized`; throws as `serializeOutcome` does. */
  const serialize = (outcome: Outcome, at: Date): SerializedOutcome =>
    serializeOutcome(outcome, at, keepCompleted)

  const finish = (
    outcomes: ReadonlyArray<Outcome>,
    now: Date,
  ): Effect.Effect<ReadonlySet<number>, SqlError> => finishSerialized(outcomes.map((o) => serialize(o, now)))

  return { serialize, finishSerialized, finish }
}
