import { expect, layer } from "@effect/vitest"
import { Clock, Effect, Schema, TestClock } from "effect"
import { Job, Jobs } from "effect-jobs"
import * as Testing from "effect-jobs/testing"

class Bounced extends Schema.TaggedError<Bounced>()("Bounced", { to: Schema.String }) {}

const Welcome = Job.make("welcome", {
  args: Schema.Struct({ to: Schema.String }),
  result: Schema.Struct({ messageId: Schema.String }),
  backoff: "1 minute",
})
const welcome = Welcome.handler(({ args }) =>
  args.to.endsWith("@bounce.example")
    ? Effect.fail(new Bounced({ to: args.to }))
    : Effect.succeed({ messageId: `m-${args.to}` }),
)

// One PGlite for the file, opened from a migrated image; each test's layer empties it.
layer(Testing.pglite())((it) => {
  it.effect("a welcome is enqueued, then sent by drain", () =>
    Effect.gen(function* () {
      const jobs = yield* Jobs.Jobs
      yield* jobs.insert(Welcome, { to: "ann@example.com" }, { scheduleIn: "1 hour" })
      yield* Testing.assertEnqueued(Welcome, { args: { to: "ann@example.com" }, scheduledIn: "1 hour" })
      expect((yield* Testing.drain("default")).success).toBe(0) // not due yet
      yield* TestClock.adjust("1 hour")
      expect((yield* Testing.drain("default")).success).toBe(1)
    }).pipe(Effect.provide(Testing.layer({ handlers: [welcome] }))),
  )

  it.effect("perform answers the typed outcome", () =>
    Effect.gen(function* () {
      const outcome = yield* Testing.perform(welcome, { to: "x@bounce.example" })
      if (outcome._tag !== "Failure") return expect.fail(outcome._tag)
      expect(outcome.error.to).toBe("x@bounce.example") // typed: Bounced
      const now = yield* Clock.currentTimeMillis // the TestClock's
      expect(outcome.retryAt?.getTime()).toBe(now + 60_000) // the definition's backoff
    }),
  )
})
