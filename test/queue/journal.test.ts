/**
 * The throttle between a handler's reports and its job's row, driven by the TestClock.
 */
import { randomUUID } from "node:crypto"
import { SqlClient } from "@effect/sql/SqlClient"
import { describe, expect, layer } from "@effect/vitest"
import { Duration, Effect, TestClock } from "effect"
import * as Journal from "../../src/internal/queue/journal.js"
import { migrate } from "../../src/internal/store/migrations.js"
import * as Store from "../../src/internal/store/store.js"
import { dropSchema, engines, freshSchema } from "../support/engines.js"
import { eventually, realSleep } from "../support/jobs.js"
import { insertNoops } from "../support/store.js"

for (const engine of engines) {
  describe(`journal on ${engine.name}`, () => {
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
    })
  })
}
