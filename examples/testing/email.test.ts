/**
 * The email job, tested with effect-jobs/testing: one attempt run with `perform`, and a
 * bouncing address drained through its retries on the TestClock. Under the example's
 * `isolate: false` this file takes the database the sign-up file gave back, if it ran first
 * in the same worker.
 */
import { describe, expect, layer } from "@effect/vitest"
import { Clock, Effect, TestClock } from "effect"
import { Jobs } from "effect-jobs"
import * as Testing from "effect-jobs/testing"
import { Bounced, handlers, SendEmail, sendEmail } from "./app.js"

describe("email jobs", () => {
  layer(Testing.pglite(), { timeout: "2 minutes" })((it) => {
    it.effect("a bouncing address fails with Bounced, and is retried a minute later", () =>
      Effect.gen(function* () {
        const outcome = yield* Testing.perform(sendEmail, { to: "x@bounce.example", template: "welcome" })
        if (outcome._tag !== "Failure") return expect.fail(`expected a failure, got ${outcome._tag}`)
        expect(outcome.error).toEqual(new Bounced({ to: "x@bounce.example" }))
        expect(outcome.retryAt?.getTime()).toBe((yield* Clock.currentTimeMillis) + 60_000)

        const sent = yield* Testing.perform(
          sendEmail,
          { to: "ok@example.com", template: "welcome" },
          { attempt: 2 },
        )
        if (sent._tag !== "Success") return expect.fail(`expected a success, got ${sent._tag}`)
        expect(sent.result.messageId).toBe("welcome-ok@example.com-2")
      }),
    )

    it.effect("a bouncing address is tried three times, a minute apart, then discarded", () =>
      Effect.gen(function* () {
        const jobs = yield* Jobs.Jobs
        yield* jobs.insert(SendEmail, { to: "x@bounce.example", template: "reminder" })
        expect(yield* Testing.drain("mail")).toMatchObject({ failure: 1, discard: 0 })
        yield* Testing.assertEnqueued(SendEmail, { state: "retryable", scheduledIn: "1 minute" })

        yield* TestClock.adjust("1 minute")
        expect(yield* Testing.drain("mail")).toMatchObject({ failure: 1 })
        yield* TestClock.adjust("1 minute")
        expect(yield* Testing.drain("mail")).toMatchObject({ failure: 1 })
        yield* Testing.assertEnqueued(SendEmail, { state: "discarded" })
      }).pipe(Effect.provide(Testing.layer({ handlers }))),
    )
  })
})
