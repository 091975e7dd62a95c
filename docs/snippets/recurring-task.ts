import { Effect, Schema } from "effect"
import { Jobs, Task, Tasks } from "effect-jobs"

class FeedUnavailable extends Schema.TaggedError<FeedUnavailable>()("FeedUnavailable", {
  message: Schema.String,
}) {}

const fetchPage = (cursor: number) => Effect.succeed({ events: [cursor + 1, cursor + 2], next: cursor + 2 })

// Each run gets the state the previous run returned, across restarts and nodes.
export const importFeed = Task.make({
  id: "import-feed", // stable: state and history are stored under it
  name: "Import the event feed", // free to change
  every: "30 seconds", // or cron: "*/5 * * * *" (with timezone); every: 0 runs once
  state: Schema.Struct({ cursor: Schema.Number }),
  initial: { cursor: 0 },
  run: ({ cursor }) =>
    Effect.gen(function* () {
      // A failure keeps { cursor } for the next run; a defect resets the task to `initial`.
      if (cursor < 0) return yield* new FeedUnavailable({ message: "bad cursor" })
      const page = yield* fetchPage(cursor)
      return { cursor: page.next }
    }),
})

export const JobsLive = Jobs.layer({ tasks: [importFeed] })

export const inspect = Effect.gen(function* () {
  const tasks = yield* Tasks.Tasks
  const run = yield* tasks.runNow("import-feed") // runs here, now, and answers the run
  yield* Effect.log(`${run.outcome}, state ${JSON.stringify(run.state)}`)
  for (const s of yield* tasks.stats()) {
    // Every stored task, whichever nodes (s.nodes) register it; states as stored.
    yield* Effect.log(`${s.name}: ${s.status}, ${s.successes} ok, ${s.failures} failed, next ${s.nextRunAt}`)
  }
  const feed = yield* tasks.stats(importFeed) // through the definition: state decoded and typed
  yield* Effect.log(`cursor ${feed.state.cursor}, registered on ${feed.nodes.join(", ")}`)
  const history = yield* tasks.history("import-feed", { limit: 10 })
  yield* Effect.log(`${history.length} recent runs`)
})
