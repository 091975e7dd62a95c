/**
 * The attempt's path as a user sees it, on every engine: whatever a handler, its failure, its
 * result or its backoff throws becomes a counted failure; text PostgreSQL refuses is made
 * storable; args and meta that JSON would change are refused at insert.
 */
import { describe, expect, layer } from "@effect/vitest"
import { Duration, Effect, Either, Ref, Schema } from "effect"
import * as Job from "../../src/Job.js"
import type { JobRecord } from "../../src/JobRecord.js"
import type * as Jobs from "../../src/Jobs.js"
import { engines } from "../support/engines.js"
import { awaitState, realSleep, startJobs } from "../support/jobs.js"

class Boom extends Schema.TaggedError<Boom>()("Boom", { message: Schema.String }) {}

/** A failure whose `message` cannot be read. */
class Unreadable {
  readonly _tag = "Unreadable"
  get message(): string {
    throw new Error("message getter exploded")
  }
}

/** A failure that cannot be turned into a string at all. */
const unprintable = {
  toString() {
    throw new Error("toString exploded")
  },
}

type Variant = "eager" | "nullProto" | "getter" | "throwingToString" | "notEffect" | "resultEncode" | "bigint"

const Failing = Job.make("failing", {
  args: Schema.Struct({ variant: Schema.String, s: Schema.String }),
  result: Schema.Unknown,
  maxAttempts: 3,
  backoff: "20 millis",
})

const expectCounted = (done: JobRecord) => {
  expect(done.attempt).toBe(3)
  expect(done.errors.map((e) => e.attempt)).toEqual([1, 2, 3])
  for (const e of done.errors) {
    expect(e.message.length).toBeGreaterThan(0)
    expect(typeof e.cause).toBe("string")
  }
}

for (const engine of engines) {
  describe(`the attempt's path on ${engine.name}`, () => {
    layer(engine.layer, { timeout: 60_000, excludeTestServices: true })((it) => {
      it.scoped(
        "counts every exception on the attempt's path as a failure, and discards after maxAttempts",
        () =>
          Effect.gen(function* () {
            const runs: Record<string, number> = {}
            const failing = Failing.handler(({ args }) => {
              runs[args.variant] = (runs[args.variant] ?? 0) + 1
              switch (args.variant as Variant) {
                case "eager":
                  // Throws while the handler builds its Effect, before any Effect runs.
                  return Effect.succeed(JSON.parse(args.s))
                case "nullProto":
                  return Effect.fail(Object.create(null))
                case "getter":
                  return Effect.fail(new Unreadable())
                case "throwingToString":
                  return Effect.fail(unprintable)
                case "notEffect":
                  return undefined as unknown as Effect.Effect<unknown>
                case "resultEncode":
                  return Effect.succeed({
                    toJSON() {
                      throw new Error("toJSON exploded")
                    },
                  })
                case "bigint":
                  return Effect.succeed(1n)
              }
            })
            const jobs = yield* startJobs({ handlers: [failing] })
            const variants: ReadonlyArray<Variant> = [
              "eager",
              "nullProto",
              "getter",
              "throwingToString",
              "notEffect",
              "resultEncode",
              "bigint",
            ]
            const ids: Record<string, number> = {}
            for (const variant of variants)
              ids[variant] = (yield* jobs.insert(Failing, { variant, s: "{x" })).id
            const done: Record<string, JobRecord> = {}
            for (const variant of variants)
              done[variant] = yield* awaitState(jobs, ids[variant]!, "discarded", "15 seconds")
            yield* realSleep(300)
            for (const variant of variants) {
              expect([variant, runs[variant]]).toEqual([variant, 3])
              expectCounted(done[variant]!)
            }
            expect(done.eager!.errors[0]!.tag).toBe("Defect")
            expect(done.eager!.errors[0]!.message).toContain("JSON")
            expect(done.nullProto!.errors[0]!.message).toMatch(/^\{\} \(it could not be turned into text/)
            expect(done.getter!.errors[0]!.tag).toBe("Unreadable")
            expect(done.getter!.errors[0]!.message).toContain("message getter exploded")
            expect(done.throwingToString!.errors[0]!.message).toContain("toString exploded")
            expect(done.notEffect!.errors[0]!.message).toContain("Not a valid effect")
            expect(done.resultEncode!.errors[0]!.tag).toBe("UnstorableOutcome")
            expect(done.resultEncode!.errors[0]!.message).toContain("toJSON exploded")
            expect(done.bigint!.errors[0]!.tag).toBe("UnstorableOutcome")
            expect(done.bigint!.errors[0]!.message).toContain("BigInt")
          }),
      )

      it.scoped(
        "a backoff that throws still counts the failure, and the default backoff spaces the retry",
        () =>
          Effect.gen(function* () {
            const runs = yield* Ref.make(0)
            const BadBackoff = Job.make("bad-backoff", {
              args: Schema.Struct({}),
              maxAttempts: 2,
              backoff: () => {
                throw new Error("backoff exploded")
              },
            })
            const handler = BadBackoff.handler(() =>
              Effect.zipRight(
                Ref.update(runs, (n) => n + 1),
                Effect.fail(new Boom({ message: "no luck" })),
              ),
            )
            const jobs = yield* startJobs({ handlers: [handler] })
            const job = yield* jobs.insert(BadBackoff, {})
            const retrying = yield* awaitState(jobs, job.id, "retryable")
            expect(retrying.attempt).toBe(1)
            expect(retrying.errors.map((e) => e.tag)).toEqual(["Boom"])
            expect(retrying.errors[0]!.message).toContain("no luck")
            expect(retrying.errors[0]!.message).toContain("backoff exploded")
            const done = yield* awaitState(jobs, job.id, "discarded", "15 seconds")
            expect(done.attempt).toBe(2)
            expect(done.errors).toHaveLength(2)
            yield* realSleep(300)
            expect(yield* Ref.get(runs)).toBe(2)
          }),
      )

      it.scoped("a backoff that answers no valid time still counts the failure", () =>
        Effect.gen(function* () {
          const runs = yield* Ref.make(0)
          const Forever = Job.make("forever-backoff", {
            args: Schema.Struct({}),
            maxAttempts: 3,
            backoff: () => Duration.infinity,
          })
          const handler = Forever.handler(() =>
            Effect.zipRight(
              Ref.update(runs, (n) => n + 1),
              Effect.fail(new Boom({ message: "no luck" })),
            ),
          )
          const jobs = yield* startJobs({ handlers: [handler] })
          const job = yield* jobs.insert(Forever, {})
          const retrying = yield* awaitState(jobs, job.id, "retryable")
          expect(retrying.attempt).toBe(1)
          expect(retrying.errors[0]!.message).toContain("no luck")
          expect(yield* Ref.get(runs)).toBe(1)
        }),
      )

      it.scoped("makes text PostgreSQL refuses storable and keeps retrying as usual", () =>
        Effect.gen(function* () {
          const Texts = Job.make("texts", {
            args: Schema.Struct({ kind: Schema.String }),
            result: Schema.Unknown,
            maxAttempts: 3,
            backoff: "20 millis",
          })
          const handler = Texts.handler(({ args, job }) => {
            if (job.attempt === 1 && args.kind.startsWith("fail")) {
              const text = args.kind === "fail-nul" ? "bad\u0000byte" : "lone \uD800 half"
              return Effect.fail(new Boom({ message: text }))
            }
            switch (args.kind) {
              case "nul":
                return Effect.succeed({ text: "a\u0000b", "key\u0000": 1 })
              case "surrogate":
                return Effect.succeed(["x\uDC00y", "pair \uD83D\uDE00 kept"])
              case "literal":
                return Effect.succeed("the six characters \\u0000 and \\\\u0000 and \\uD800")
              default:
                return Effect.succeed("ok")
            }
          })
          const jobs = yield* startJobs({ handlers: [handler] })
          const ids = {
            failNul: (yield* jobs.insert(Texts, { kind: "fail-nul" })).id,
            failSurrogate: (yield* jobs.insert(Texts, { kind: "fail-surrogate" })).id,
            nul: (yield* jobs.insert(Texts, { kind: "nul" })).id,
            surrogate: (yield* jobs.insert(Texts, { kind: "surrogate" })).id,
            literal: (yield* jobs.insert(Texts, { kind: "literal" })).id,
          }
          const failNul = yield* awaitState(jobs, ids.failNul, "completed")
          expect(failNul.attempt).toBe(2)
          expect(failNul.errors.map((e) => [e.tag, e.message])).toEqual([["Boom", "bad\uFFFDbyte"]])
          const failSurrogate = yield* awaitState(jobs, ids.failSurrogate, "completed")
          expect(failSurrogate.errors.map((e) => [e.tag, e.message])).toEqual([["Boom", "lone \uFFFD half"]])
          const nul = yield* awaitState(jobs, ids.nul, "completed")
          expect(nul.attempt).toBe(1)
          expect(nul.result).toEqual({ text: "a\uFFFDb", "key\uFFFD": 1 })
          const surrogate = yield* awaitState(jobs, ids.surrogate, "completed")
          expect(surrogate.result).toEqual(["x\uFFFDy", "pair \uD83D\uDE00 kept"])
          const literal = yield* awaitState(jobs, ids.literal, "completed")
          expect(literal.errors).toEqual([])
          expect(literal.result).toBe("the six characters \\u0000 and \\\\u0000 and \\uD800")
        }),
      )

      it.scoped("refuses args and meta that JSON or PostgreSQL would change, and inserts nothing", () =>
        Effect.gen(function* () {
          const Numbers = Job.make("numbers", {
            args: Schema.Struct({ n: Schema.Number, nested: Schema.optional(Schema.Array(Schema.Number)) }),
          })
          // Schema.Unknown lets anything through to JSON: what the insert itself must catch.
          const Loose = Job.make("loose", {
            args: Schema.Struct({ value: Schema.Unknown }) as unknown as Schema.Schema<
              { readonly value: unknown },
              { readonly value: Job.Json }
            >,
          })
          const jobs = yield* startJobs({ handlers: [], queues: {} })
          const refused = (effect: Effect.Effect<unknown, Jobs.InsertError>) =>
            Effect.map(Effect.either(effect), (result) =>
              Either.isLeft(result) ? `${result.left._tag}: ${result.left.message}` : "inserted",
            )
          const nan = yield* refused(jobs.insert(Numbers, { n: Number.NaN }))
          expect(nan).toMatch(/^InvalidJobArgs: .*args\.n .*NaN/)
          expect(yield* refused(jobs.insert(Numbers, { n: Number.POSITIVE_INFINITY }))).toMatch(
            /InvalidJobArgs: .*args\.n .*Infinity/,
          )
          expect(
            yield* refused(jobs.insert(Numbers, { n: 1, nested: [1, Number.NEGATIVE_INFINITY] })),
          ).toMatch(/InvalidJobArgs: .*args\.nested\[1\] .*-Infinity/)
          // One bad job refuses the whole batch.
          expect(yield* refused(jobs.insertMany(Numbers, [{ n: 1 }, { n: 2 }, { n: Number.NaN }]))).toMatch(
            /InvalidJobArgs: .*args\.n .*NaN/,
          )
          const loose: ReadonlyArray<[unknown, RegExp]> = [
            [new Date(0), /args\.value .*Date/],
            [[1, undefined], /args\.value\[1\] .*undefined/],
            [{ f: () => 1 }, /args\.value\.f .*function/],
            [new Map([[1, 2]]), /args\.value .*Map/],
            [{ "odd key": Symbol("s") }, /args\.value\["odd key"\] .*symbol/],
            ["nul \u0000 inside", /args\.value .*NUL/],
            ["lone \uD800 half", /args\.value .*surrogate/],
            [{ "k\u0000": 1 }, /NUL/],
          ]
          for (const [value, pattern] of loose) {
            const message = yield* refused(jobs.insert(Loose, { value }))
            expect(message).toMatch(/^InvalidJobArgs: /)
            expect(message).toMatch(pattern)
          }
          const meta = yield* refused(jobs.insert(Numbers, { n: 1 }, { meta: { score: Number.NaN } }))
          expect(meta).toMatch(/^InvalidJobOptions: .*meta\.score .*NaN/)
          const bigMeta = yield* refused(jobs.insert(Numbers, { n: 1 }, { meta: { big: 1n } }))
          expect(bigMeta).toMatch(/^InvalidJobOptions: .*meta/)
          expect(yield* jobs.list()).toHaveLength(0)
          // What does survive the round trip still goes in.
          const fine = yield* jobs.insert(Loose, { value: { a: [1, null, "\\u0000"], b: undefined } })
          expect(fine.args).toEqual({ value: { a: [1, null, "\\u0000"], b: undefined } })
          expect((yield* jobs.get(fine.id)).args).toEqual({ value: { a: [1, null, "\\u0000"] } })
        }),
      )
    })
  })
}
