/**
 * `perform`: one attempt of a handler, no database, with its typed, tagged outcome.
 */
import { describe, expect, it } from "@effect/vitest"
import { Duration, Effect, Fiber, Schema, TestClock } from "effect"
import * as Job from "../../src/Job.js"
import * as Testing from "../../src/Testing.js"

class PaymentDeclined extends Schema.TaggedError<PaymentDeclined>()("PaymentDeclined", {
  card: Schema.String,
}) {}

const Charge = Job.make("charge", {
  args: Schema.Struct({ cents: Schema.Number, card: Schema.String, at: Schema.Date }),
  result: Schema.Struct({ receipt: Schema.String, at: Schema.Date }),
  maxAttempts: 3,
  backoff: "10 seconds",
  timeout: "5 seconds",
})

const charge = Charge.handler(({ args, job }) =>
  Effect.gen(function* () {
    if (args.card === "declined") return yield* new PaymentDeclined({ card: args.card })
    if (args.card === "later") return yield* Job.snooze("1 minute")
    if (args.card === "stolen") return yield* Job.cancel("card reported stolen")
    if (args.card === "expired") return yield* Job.discard("card expired")
    if (args.card === "slow") yield* Effect.sleep("1 minute")
    if (args.card === "broken") return yield* Effect.die(new Error("the gateway answered nonsense"))
    return { receipt: `r-${args.cents}-${job.attempt}-${String(job.meta.tenant)}`, at: args.at }
  }),
)

const at = new Date("2030-05-01T10:00:00Z")

describe("perform", () => {
  it.effect("answers Success with the typed result, stored and decoded again", () =>
    Effect.gen(function* () {
      const outcome = yield* Testing.perform(
        charge,
        { cents: 500, card: "ok", at },
        { attempt: 2, meta: { tenant: "acme" } },
      )
      expect(outcome._tag).toBe("Success")
      if (outcome._tag !== "Success") return
      expect(outcome.result.receipt).toBe("r-500-2-acme")
      expect(outcome.result.at).toBeInstanceOf(Date)
      expect(outcome.result.at.getTime()).toBe(at.getTime())
      expect(outcome.state).toBe("completed")
      // The handler saw the args as a claim reads them back: encoded to JSON, then decoded.
      expect(outcome.job.args).toEqual({ cents: 500, card: "ok", at: at.toISOString() })
    }),
  )

  it.effect("answers Failure with the handler's typed error, and when it is retried", () =>
    Effect.gen(function* () {
      const first = yield* Testing.perform(charge, { cents: 1, card: "declined", at })
      expect(first._tag).toBe("Failure")
      if (first._tag !== "Failure") return
      const error: PaymentDeclined = first.error
      expect(error.card).toBe("declined")
      expect(first.state).toBe("retryable")
      expect(first.retryAt?.getTime()).toBe(10_000)
      const last = yield* Testing.perform(charge, { cents: 1, card: "declined", at }, { attempt: 3 })
      expect(last).toMatchObject({ _tag: "Failure", state: "discarded", retryAt: undefined })
    }),
  )

  it.effect("answers Snooze, Cancel and Discard as the handler asked", () =>
    Effect.gen(function* () {
      const snooze = yield* Testing.perform(charge, { cents: 1, card: "later", at })
      expect(snooze).toMatchObject({ _tag: "Snooze", state: "scheduled", until: new Date(60_000) })
      if (snooze._tag === "Snooze") expect(Duration.toMillis(snooze.delay)).toBe(60_000)
      expect(yield* Testing.perform(charge, { cents: 1, card: "stolen", at })).toMatchObject({
        _tag: "Cancel",
        reason: "card reported stolen",
        state: "cancelled",
      })
      expect(yield* Testing.perform(charge, { cents: 1, card: "expired", at })).toMatchObject({
        _tag: "Discard",
        reason: "card expired",
        state: "discarded",
      })
    }),
  )

  it.effect("answers Timeout when the handler runs over its timeout on the TestClock", () =>
    Effect.gen(function* () {
      const fiber = yield* Effect.fork(Testing.perform(charge, { cents: 1, card: "slow", at }))
      yield* TestClock.adjust("5 seconds")
      const outcome = yield* Fiber.join(fiber)
      expect(outcome._tag).toBe("Timeout")
      if (outcome._tag === "Timeout") {
        expect(Duration.toMillis(outcome.timeout)).toBe(5000)
        expect(outcome.retryAt?.getTime()).toBe(15_000)
      }
    }),
  )

  it.effect("answers Defect when the handler dies, retried like a failure", () =>
    Effect.gen(function* () {
      const outcome = yield* Testing.perform(charge, { cents: 1, card: "broken", at })
      expect(outcome).toMatchObject({ _tag: "Defect", state: "retryable" })
    }),
  )

  it.effect("fails with ArgsDecodeError when the args would not survive storage", () =>
    Effect.gen(function* () {
      const Remind = Job.make("remind", { args: Schema.Struct({ at: Schema.DateFromSelf }) as never })
      const remind = Remind.handler(() => Effect.void)
      const error = yield* Effect.flip(Testing.perform(remind, { at: new Date() }))
      expect(error._tag).toBe("InvalidJobArgs")
      expect(error.message).toContain('the args given for a "remind" job were refused')
      const Note = Job.make("note", { args: Schema.String })
      const note = Note.handler(() => Effect.void)
      const large = yield* Effect.flip(Testing.perform(note, "x".repeat(1024 * 1024)))
      expect(large.message).toMatch(
        /^the args of a "note" job encode to \d+ bytes, over the limit of 1048576 bytes/,
      )
      // Encodes, but what comes back from storage does not decode: the handler would never run.
      const Lossy = Job.make("lossy", {
        args: Schema.transform(Schema.String, Schema.String.pipe(Schema.maxLength(3)), {
          decode: (stored) => `${stored}!!!`,
          encode: (code) => code,
        }),
      })
      const lossy = Lossy.handler(() => Effect.void)
      const lost = yield* Effect.flip(Testing.perform(lossy, "ab"))
      expect(lost._tag).toBe("ArgsDecodeError")
      expect(lost.message).toContain('the stored args of a "lossy" job no longer decode')
    }),
  )

  it.effect("refuses bad options with a typed error, naming the option", () =>
    Effect.gen(function* () {
      const error = yield* Effect.flip(Testing.perform(charge, { cents: 1, card: "ok", at }, { attempt: 0 }))
      expect(error._tag).toBe("InvalidJobOptions")
      expect(error.message).toContain("attempt must be a whole number from 1")
      const Publish = Job.make("publish", { args: Schema.Struct({}), resource: "post" })
      const publish = Publish.handler(({ resource }) => Effect.succeed(resource))
      const missing = yield* Effect.flip(Testing.perform(publish, {}))
      expect(missing.message).toContain("give the post's id as the resource option")
      expect(yield* Testing.perform(publish, {}, { resource: "post-7" })).toMatchObject({ _tag: "Success" })
    }),
  )
})
