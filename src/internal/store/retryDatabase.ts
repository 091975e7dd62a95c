import type { SqlError } from "@effect/sql/SqlError"
import { Effect, Schedule } from "effect"
import { DatabaseError } from "../../JobError.js"

/**
 * What a caller sees when the database refused or could not be reached for `operation`: the
 * driver's summary ("Failed to execute statement") says nothing, so the server's own message
 * and SQLSTATE, when it answered, are carried too.
 */
export const toDatabaseError = (operation: string) => (error: SqlError) => {
  const cause = error.cause as { readonly message?: unknown; readonly code?: unknown } | undefined
  const server = typeof cause?.message === "string" && cause.message !== "" ? cause.message : undefined
  const code = typeof cause?.code === "string" ? cause.code : undefined
  return new DatabaseError({
    operation,
    reason:
      server === undefined || error.message.includes(server) ? error.message : `${error.message}: ${server}`,
    ...(code === undefined ? {} : { code }),
    cause: error.cause,
  })
}

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
