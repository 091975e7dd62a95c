/**
 * Apps configure their own SqlClient; the jobs tables are read as stored whatever it does.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Schema, String as Str } from "effect"
import * as Job from "../src/Job.js"
import * as JobsPg from "../src/JobsPg.js"
import { postgresAvailable, postgresUrl } from "./support/engines.js"
import { awaitState, startJobs } from "./support/jobs.js"

const Greet = Job.make("greet", { args: Schema.Struct({ firstName: Schema.String }), maxAttempts: 7 })

describe.runIf(postgresAvailable)("an app SqlClient with transforms", () => {
  it.live("does not change how jobs are stored or read", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const jobs = yield* startJobs({ handlers: [Greet.handler(() => Effect.void)] })
        const job = yield* jobs.insert(Greet, { firstName: "Ada" }, { scheduleIn: "10 millis" })
        expect(job.maxAttempts).toBe(7)
        expect(job.scheduledAt.getTime()).not.toBeNaN()
        // Read back from the table, through the app's client: as stored.
        const done = yield* awaitState(jobs, job.id, "completed")
        expect(done.args).toEqual({ firstName: "Ada" })
        expect(done.maxAttempts).toBe(7)
        expect(done.attempt).toBe(1)
        expect(done.scheduledAt.getTime()).toBe(job.scheduledAt.getTime())
        expect(done.insertedAt.getTime()).not.toBeNaN()
      }),
    ).pipe(
      Effect.provide(
        JobsPg.layer({
          url: postgresUrl,
          transformResultNames: Str.snakeToCamel,
          transformQueryNames: Str.camelToSnake,
        }),
      ),
    ),
  )
})
