/**
 * Stateful recurring tasks: `npx tsx examples/recurring-task.ts`
 *
 * A task that imports an event feed page by page: each run takes the cursor the previous run
 * returned and returns the next one. The state is stored, so when the app restarts (here: the
 * layer is built a second time on the same database directory) the task goes on from where
 * it was. A typed failure keeps the cursor; a defect resets the task to its initial state.
 * The task manager registers and unregisters tasks, runs one on demand, and reports stats and
 * each task's history.
 */
import { rmSync } from "node:fs"
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import { Console, Effect, Layer, Logger, LogLevel, Schedule, Schema } from "effect"
import { Jobs, JobsPglite, Task, Tasks } from "effect-jobs"

class FeedUnavailable extends Schema.TaggedError<FeedUnavailable>()("FeedUnavailable", {
  message: Schema.String,
}) {}

// The feed fails once, on its third request, and recovers.
let requests = 0

const importFeed = Task.make({
  id: "import-feed",
  name: "Import the event feed",
  every: "400 millis", // counted from the end of each run
  state: Schema.Struct({ cursor: Schema.Number, imported: Schema.Number }),
  initial: { cursor: 0, imported: 0 },
  run: (state) =>
    Effect.gen(function* () {
      requests++
      if (requests === 3) return yield* new FeedUnavailable({ message: "503 from the feed" })
      const page = 25
      yield* Console.log(`    > imported events ${state.cursor + 1}-${state.cursor + page}`)
      return { cursor: state.cursor + page, imported: state.imported + page }
    }),
})

// A run-once task (an interval of zero), hidden from the stats.
const warmCache = Task.make({
  id: "warm-cache",
  every: 0,
  hidden: true,
  state: Schema.Boolean,
  initial: false,
  run: () => Effect.as(Console.log("    > cache warmed (once)"), true),
})

const dataDir = ".effect-jobs/recurring-task"

const JobsLive = Jobs.layer({ tasks: [importFeed, warmCache], queues: {}, pollInterval: "100 millis" }).pipe(
  Layer.provide(JobsPglite.layer({ dataDir })),
)

const printStats = Effect.gen(function* () {
  const tasks = yield* Tasks.Tasks
  for (const s of yield* tasks.stats()) {
    yield* Console.log(
      `  ${s.id} "${s.name}": ${s.status}, ${s.successes} ok, ${s.failures} failed, last error: ${s.lastError ?? "none"}, state ${JSON.stringify(s.state)}, on ${s.nodes.length} node(s)`,
    )
  }
})

const firstRun = Effect.gen(function* () {
  yield* Console.log("First start: the task runs every 400 ms for 2 seconds.")
  yield* Effect.sleep("2 seconds")
  yield* printStats
  yield* Console.log("Stopping the app.\n")
})

const secondRun = Effect.gen(function* () {
  const tasks = yield* Tasks.Tasks
  yield* Console.log("Second start: the task goes on from its stored cursor.")
  // A run on demand; if a scheduled run is under way right then, try again shortly.
  const run = yield* tasks
    .runNow("import-feed")
    .pipe(
      Effect.retry({ while: (e) => e._tag === "TaskAlreadyRunning", schedule: Schedule.spaced("50 millis") }),
    )
  yield* Console.log(`  runNow: ${run.outcome}, state ${JSON.stringify(run.state)}`)
  yield* Effect.sleep("1 second")
  yield* printStats

  // A task that dies is reset to its initial state, and its counters start again.
  const fragileTask = Task.make({
    id: "fragile",
    every: "1 hour",
    state: Schema.Number,
    initial: 0,
    run: (n) => (n >= 1 ? Effect.dieMessage("corrupt input") : Effect.succeed(n + 1)),
  })
  yield* tasks.register(fragileTask)
  yield* tasks.runNow("fragile")
  const died = yield* tasks.runNow("fragile")
  // Read through its definition, the task's state is decoded: a number here.
  const fragile = yield* tasks.stats(fragileTask)
  yield* Console.log(
    `  fragile: run ${died.outcome}, state back to ${fragile.state}, restarted at ${fragile.restartedAt?.toISOString()}`,
  )
  const again = yield* Effect.flip(tasks.register(importFeed))
  yield* Console.log(`  registering twice: ${again.message}`)
  yield* tasks.unregister("fragile")

  const history = yield* tasks.history("import-feed", { limit: 20 })
  yield* Console.log(`\nHistory of import-feed (newest first, across both starts):`)
  for (const r of history) {
    yield* Console.log(
      `  ${r.finishedAt.toISOString().slice(11, 23)} ${r.trigger.padEnd(8)} ${r.outcome.padEnd(8)} ${r.error ?? ""}`,
    )
  }
})

// A clean database for each run of the example.
rmSync(dataDir, { recursive: true, force: true })

Effect.provide(firstRun, JobsLive).pipe(
  Effect.zipRight(Effect.provide(secondRun, JobsLive)),
  Logger.withMinimumLogLevel(LogLevel.None),
  NodeRuntime.runMain,
)
