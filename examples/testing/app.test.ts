/**
 * The app's jobs, tested with effect-jobs/testing on the TestClock: one PGlite for the file,
 * opened from a migrated image; each test's layer starts from an empty schema.
 */
import { describe, expect, layer } from "@effect/vitest"
import { Clock, Effect, TestClock } from "effect"
import * as Testing from "effect-jobs/testing"
import { Bounced, handlers, register, SendEmail, SignUp, sendEmail } from "./app.js"

describe("sign-up jobs", () => {
  // PGlite opens in seconds, longer on a busy CI machine: the hook gets two minutes.
  layer(Testing.pglite(), { timeout: "2 minutes" })((it) => {
    it.effect("a sign-up enqueues a welcome email now and a reminder tomorrow", () =>
      Effect.gen(function* () {
        yield* register("ann@example.com")
        yield* Testing.assertEnqueued(SignUp, { args: { email: "ann@example.com" } })

        const ran = yield* Testing.drain("default")
        expect(ran.success).toBe(1)
        yield* Testing.assertEnqueued(SendEmail, { args: { template: "welcome" }, queue: "mail" })
        yield* Testing.assertEnqueued(SendEmail, { args: { template: "reminder" }, scheduledIn: "1 day" })

        expect((yield* Testing.drain("mail")).success).toBe(1)
        yield* TestClock.adjust("1 day")
        expect((yield* Testing.drain("mail")).success).toBe(1)
        yield* Testing.refuteEnqueued(SendEmail)
      }).pipe(Effect.provide(Testing.layer({ handlers }))),
    )

    it.effect("in inline mode the whole sign-up runs before register returns", () =>
      Effect.gen(function* () {
        const job = yield* register("bob@example.com")
        expect(job.state).toBe("completed")
        const emails = yield* Testing.allEnqueued(SendEmail, { state: ["completed", "scheduled"] })
        expect(emails.map((email) => [email.args.template, email.state])).toEqual([
          ["welcome", "completed"],
          ["reminder", "scheduled"],
        ])
      }).pipe(Effect.provide(Testing.layer({ handlers, mode: "inline" }))),
    )

    it.effect("a bouncing address fails with Bounced, and is retried a minute later", () =>
      Effect.gen(function* () {
        const outcome = yield* Testing.perform(sendEmail, { to: "x@bounce.example", template: "welcome" })
        if (outcome._tag !== "Failure") return expect.fail(`expected a failure, got ${outcome._tag}`)
        expect(outcome.error).toEqual(new Bounced({ to: "x@bounce.example" }))
        // The TestClock is shared by the tests of this block: the first one moved it a day on.
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
  })
})
