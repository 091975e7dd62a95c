/**
 * The sign-up's jobs, tested with effect-jobs/testing on the TestClock: one PGlite for the
 * file, opened from a migrated image (or handed on by the file before it in the same vitest
 * worker); each test's layer starts from an empty schema.
 */
import { describe, expect, layer } from "@effect/vitest"
import { Effect, TestClock } from "effect"
import * as Testing from "effect-jobs/testing"
import { handlers, register, SendEmail, SignUp } from "./app.js"

describe("sign-up jobs", () => {
  // The first file of a worker opens PGlite, in seconds on a busy CI machine: the hook gets two minutes.
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
  })
})
