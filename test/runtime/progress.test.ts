/**
 * Progress and log lines a handler reports: throttled per job (on the TestClock), stored with
 * its job, bounded, read back by `get` while it runs and after, and shown escaped on the
 * dashboard's job page.
 */
import { randomUUID } from "node:crypto"
import { SqlClient } from "@effect/sql/SqlClient"
import { describe, expect, layer } from "@effect/vitest"
import { Clock, Deferred, Duration, Effect, Schema, TestClock } from "effect"
import * as Journal from "../../src/internal/queue/journal.js"
import { migrate } from "../../src/internal/store/migrations.js"
import * as Store from "../../src/internal/store/store.js"
import * as Job from "../../src/Job.js"
import { startWorkerAndDashboard } from "../dashboard/support.js"
import { dropSchema, engines, freshSchema } from "../support/engines.js"
import { awaitState, eventually, realSleep } from "../support/jobs.js"
import { insertNoops } from "../support/store.js"

const Report = Job.make("report_progress", {
  args: Schema.Struct({ lines: Schema.Number, fail: Schema.Boolean }),
  maxAttempts: 2,
})

for (const engine of engines) {
  describe(`progress and job logs on ${engine.name}`, () => {
    // One PGlite per engine for both: the throttle runs on the TestClock, the runtime on a live clock.
    layer(engine.layer, { timeout: 60_000 })((it) => {
      it.scoped(
        "writes the first report at once, then at most once per interval, and the rest at the end",
        () =>
          Effect.gen(function* () {
            const sql = yield* SqlClient
            const schema = freshSchema()
            yield* Effect.addFinalizer(() => dropSchema(sql, schema))
            yield* migrate(sql, schema)
            const real = Store.make(sql, schema)
            let writes = 0
            const store: Store.Store = {
              ...real,
              writeJournal: (entry) =>
                Effect.tap(real.writeJournal(entry), () => Effect.sync(() => writes++)),
            }
            yield* insertNoops(store, 1)
            const [job] = yield* store.claim("q", 1, "n", randomUUID(), new Date())
            const journal = yield* Journal.make(store, Duration.seconds(1))
            const progressOf = Effect.map(store.get(job!.id), (record) => record!.progress?.percent)

            yield* journal.report(job!, { percent: 1, note: null }, "first")
            yield* eventually(Effect.flatMap(progressOf, (p) => (p === 1 ? Effect.void : Effect.fail(p))))
            for (let percent = 2; percent <= 50; percent++) {
              yield* journal.report(job!, { percent, note: `at ${percent}` }, `line ${percent}`)
            }
            // Within the interval nothing more is written, however much is reported.
            yield* realSleep(100)
            expect(yield* progressOf).toBe(1)
            expect(writes).toBe(1)
            yield* TestClock.adjust("1 second")
            yield* eventually(Effect.flatMap(progressOf, (p) => (p === 50 ? Effect.void : Effect.fail(p))))
            expect(writes).toBe(2)
            const record = (yield* store.get(job!.id))!
            expect(record.progress).toMatchObject({ attempt: 1, percent: 50, note: "at 50" })
            expect(record.logs.map((line) => line.message)).toEqual([
              "first",
              ...Array.from({ length: 49 }, (_, i) => `line ${i + 2}`),
            ])

            // The attempt ends within the next interval: what is left goes out at once.
            yield* journal.report(job!, { percent: 75, note: null }, undefined)
            yield* journal.flush(job!)!
            expect(yield* progressOf).toBe(75)
            expect(writes).toBe(3)
            expect(journal.flush(job!)).toBeUndefined()
          }),
      )

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
        }).pipe(Effect.withClock(Clock.make())),
      )
    })
  })
}
