import { Effect, Stream } from "effect"
import { Jobs } from "effect-jobs"

export const watchFailures = Effect.gen(function* () {
  const jobs = yield* Jobs.Jobs
  yield* jobs.events.pipe(
    Stream.runForEach((event) => {
      switch (event._tag) {
        case "Failed":
          return Effect.logWarning(
            `#${event.id} ${event.type} failed (${event.error}), retry at ${event.retryAt}`,
          )
        case "Discarded":
          return Effect.logError(`#${event.id} ${event.type} gave up: ${event.reason}`)
        default:
          return Effect.void
      }
    }),
  )
})

// Fails when a part of the runtime failed more often than its restart policy allows.
export const watchRuntime = Effect.flatMap(Jobs.Jobs, (jobs) =>
  jobs.awaitFailure.pipe(Effect.catchTag("SupervisorEscalation", (error) => Effect.logFatal(error.message))),
)
