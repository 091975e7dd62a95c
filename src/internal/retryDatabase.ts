import type { SqlError } from "@effect/sql/SqlError"
import { Effect, Schedule } from "effect"
import { DatabaseError } from "../JobError.js"

/** What a caller sees when the database refused or could not be reached for `operation`. */
export const toDatabaseError = (operation: string) => (error: SqlError) =>
  new DatabaseError({ operation, reason: error.message, cause: error.cause })

/**
 * Background work meets an unreachable database by waiting and trying again (100 ms
 * doubling to 5 s), forever: the database coming back is the normal way out, and these
 * failures must not count against a supervisor's restart budget.
 */
export const databaseRetrySchedule = Schedule.union(
  Schedule.exponential("100 millis"),
  Schedule.spaced("5 seconds"),
)

export const retryDatabase =
  (what: string) =>
  <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, never, R> =>
    effect.pipe(
      Effect.tapError((error) =>
        Effect.logWarning(
          `${what} failed; retrying: ${error instanceof Error ? error.message : String(error)}`,
        ),
      ),
      Effect.retry(databaseRetrySchedule),
      Effect.orDieWith(() => new Error("unreachable: the retry schedule never ends")),
    )
