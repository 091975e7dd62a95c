import { expect, layer } from "@effect/vitest"
import { Effect, Schema } from "effect"
import { Job, Jobs, JobsPglite } from "effect-jobs"

const Double = Job.make("double", {
  args: Schema.Struct({ n: Schema.Number }),
  result: Schema.Number,
})
const double = Double.handler(({ args }) => Effect.succeed(args.n * 2))

// A runtime in a schema of its own, so tests sharing a database never see each other's
// jobs, with short intervals so that they are quick.
const testJobs = (schema: string) =>
  Jobs.layer({
    handlers: [double],
    schema,
    pollInterval: "50 millis",
    stageInterval: "50 millis",
    shutdownTimeout: "1 second",
  })

// One in-memory database for the whole file: starting PGlite takes a few seconds.
// excludeTestServices: the runtime sleeps and polls on the real clock, not the TestClock.
layer(JobsPglite.layer(), { excludeTestServices: true })((it) => {
  it.effect("stores twice its argument", () =>
    Effect.gen(function* () {
      const jobs = yield* Jobs.Jobs
      const job = yield* jobs.insert(Double, { n: 21 })
      yield* jobs.flush("default") // until nothing is available or running, outcomes written
      const done = yield* jobs.get(job.id)
      expect(done.state).toBe("completed")
      expect(done.result).toBe(42)
    }).pipe(Effect.provide(testJobs("test_double"))),
  )
})
