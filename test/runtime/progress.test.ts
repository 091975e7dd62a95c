/**
 * Progress and log lines a handler reports: stored with its job, bounded, read back by `get`
 * while it runs and after, and shown escaped on the dashboard's job page.
 */
import { describe, expect, layer } from "@effect/vitest"
import { Deferred, Effect, Schema } from "effect"
import * as Job from "../../src/Job.js"
import { startWorkerAndDashboard } from "../dashboard/support.js"
import { engines } from "../support/engines.js"
import { awaitState, eventually } from "../support/jobs.js"

const Report = Job.make("report_progress", {
  args: Schema.Struct({ lines: Schema.Number, fail: Schema.Boolean }),
  maxAttempts: 2,
})

for (const engine of engines) {
  describe(`progress and job logs on ${engine.name}`, () => {
    layer(engine.layer, { timeout: 60_000, excludeTestServices: true })((it) => {
      it.scoped("get reads the progress while the job runs, and its newest log lines after", () =>
        Effect.gen(function* () {
          const reported = yield* Deferred.make<void>()
          const release = yield* Deferred.make<void>()
          const handler = Report.handler(({ args, job }) =>
            Effect.gen(function* () {
              yield* Job.progress(10, "starting")
              yield* Deferred.succeed(reported, undefined)
              yield* Deferred.await(release)
              for (let i = 1; i <= args.lines; i++) yield* Job.log(`line ${i} of attempt ${job.attempt}`)
              yield* Job.log(`<script>alert("x")</script>${"y".repeat(3000)}`)
              yield* Job.progress(150, "<b>done</b>")
              if (args.fail && job.attempt === 1) return yield* Effect.fail("first attempt fails")
            }),
          )
          const { jobs, url } = yield* startWorkerAndDashboard({ handlers: [handler] }, {})
          const job = yield* jobs.insert(Report, { lines: 120, fail: true })
          yield* Deferred.await(reported)
          // The first report is written at once, while the attempt still runs.
          const running = yield* eventually(
            Effect.flatMap(jobs.get(job.id), (record) =>
              record.progress === null ? Effect.fail("no progress yet") : Effect.succeed(record),
            ),
          )
          expect(running.state).toBe("executing")
          expect(running.progress).toMatchObject({ attempt: 1, percent: 10, note: "starting" })
          yield* Deferred.succeed(release, undefined)
          const done = yield* awaitState(jobs, job.id, "completed")
          // What is left at the attempt's end is written before its outcome: the last value wins.
          expect(done.progress).toMatchObject({ attempt: 2, percent: 100, note: "<b>done</b>" })
          // Each attempt wrote 121 lines; the newest 100 are kept, oldest first.
          expect(done.logs).toHaveLength(100)
          expect(done.logs.map((line) => line.attempt)).toEqual(Array.from({ length: 100 }, () => 2))
          expect(done.logs[0]!.message).toBe("line 22 of attempt 2")
          expect(done.logs.at(-1)!.message).toHaveLength(2000)
          // Listings carry the progress but not the log.
          const listed = (yield* jobs.list({ type: "report_progress" }))[0]!
          expect(listed.progress?.percent).toBe(100)
          expect(listed.logs).toEqual([])

          const page = yield* Effect.promise(() => fetch(`${url}/jobs/${job.id}`).then((r) => r.text()))
          expect(page).toContain("&lt;b&gt;done&lt;/b&gt;")
          expect(page).toContain("&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;")
          expect(page).not.toContain("<script>alert")
          expect(page).toContain("line 100 of attempt 2")
        }),
      )
    })
  })
}
