/**
 * The journal's throttled writes of `Job.progress` and `Job.log`, on the TestClock, against a
 * store that records its writes: an attempt's reports are written at once, then at most once an
 * interval, and an attempt's entry does not outlive its last report by more than an interval,
 * also when a fiber reports after the attempt ended.
 */
import { describe, expect, it } from "@effect/vitest"
import { Duration, Effect, TestClock } from "effect"
import * as Journal from "../../src/internal/queue/journal.js"
import type { JournalEntry } from "../../src/internal/store/journal.js"
import type { Store } from "../../src/internal/store/store.js"
import type { JobRecord } from "../../src/JobRecord.js"

const recordingStore = () => {
  const writes: Array<{ readonly at: number; readonly lines: ReadonlyArray<string> }> = []
  const store = {
    writeJournal: (entry: JournalEntry) =>
      Effect.map(TestClock.currentTimeMillis, (at) => {
        writes.push({ at, lines: entry.lines.map((line) => line.message) })
        // The attempt has ended in the database: the row is no longer executing.
        return false
      }),
  }
  return { writes, store: store as unknown as Store }
}

const job = { id: 7, attempt: 1 } as JobRecord

describe("the journal", () => {
  it.scoped("writes the first report at once and the next ones together an interval later", () =>
    Effect.gen(function* () {
      const { writes, store } = recordingStore()
      const journal = yield* Journal.make(store, Duration.seconds(1))
      yield* journal.report(job, undefined, "one")
      yield* TestClock.adjust("100 millis")
      yield* journal.report(job, undefined, "two")
      yield* journal.report(job, undefined, "three")
      yield* TestClock.adjust("2 seconds")
      expect(writes).toEqual([
        { at: 0, lines: ["one"] },
        { at: 1000, lines: ["two", "three"] },
      ])
      expect(journal.held()).toBe(0)
    }),
  )

  it.scoped("a report from a fiber that outlived its attempt is not held past one interval", () =>
    Effect.gen(function* () {
      const { store } = recordingStore()
      const journal = yield* Journal.make(store, Duration.seconds(1))
      yield* journal.report(job, undefined, "during")
      yield* journal.flush(job) ?? Effect.void
      expect(journal.held()).toBe(0)
      yield* journal.report(job, { percent: 50, note: null }, "after the end")
      yield* TestClock.adjust("1 second")
      expect(journal.held()).toBe(0)
    }),
  )
})
