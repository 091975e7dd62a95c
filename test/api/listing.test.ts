/**
 * Finding jobs as an operator does: filters, pages by cursor, counts, bulk cancel, retry and
 * delete, and jobs read through their definition, on every engine; failed jobs grouped by
 * their error, and the bulk actions on a group.
 */
import { SqlClient } from "@effect/sql/SqlClient"
import { describe, expect, it, layer } from "@effect/vitest"
import { Context, Deferred, Effect, Either, Layer, Ref, Schema } from "effect"
import * as Job from "../../src/Job.js"
import * as JobFilter from "../../src/JobFilter.js"
import * as JobsClient from "../../src/JobsClient.js"
import { Echo, echo } from "../runtime/fixtures.js"
import { dropSchema, engines, freshSchema } from "../support/engines.js"
import { interruptibleJob, startJobs } from "../support/jobs.js"

const Notify = Job.make("notify", {
  args: Schema.Struct({ user: Schema.Struct({ id: Schema.Number }), channel: Schema.String }),
  result: Schema.Struct({ sentAt: Schema.Date }),
})
const Post = Job.make("publish", { args: Schema.Struct({}), resource: "post" })

/** A runtime that runs nothing: every job stays where the test puts it. */
const idle = startJobs({ handlers: [echo], queues: {} })

const texts = (records: ReadonlyArray<{ readonly args: unknown }>) =>
  records.map((r) => (r.args as { text: string }).text)

/** A client on a schema of its own, migrated, with no worker. */
const clientOnly = Effect.gen(function* () {
  const sql = yield* SqlClient
  const schema = freshSchema()
  yield* Effect.addFinalizer(() => dropSchema(sql, schema))
  const context = yield* Layer.build(
    JobsClient.layer({ schema, migrate: true }).pipe(Layer.provide(Layer.succeed(SqlClient, sql))),
  )
  return { sql, schema, client: Context.get(context, JobsClient.JobsClient) }
})

/** `n` jobs in `state` whose errors end with `tag: message`, message `#` replaced by each one's number. */
const failed = (
  sql: SqlClient,
  schema: string,
  state: "retryable" | "discarded" | "completed",
  n: number,
  tag: string,
  message: string,
) =>
  sql.unsafe(
    `INSERT INTO ${schema}.jobs (queue, type, state, attempt, scheduled_at, discarded_at, completed_at, errors)
     SELECT 'q', 'sync', $1, 1, now() + interval '1 hour',
       CASE WHEN $1 = 'discarded' THEN now() END, CASE WHEN $1 = 'completed' THEN now() END,
       jsonb_build_array(
         jsonb_build_object('attempt', 0, 'at', now(), 'tag', 'Earlier', 'message', 'first try', 'cause', ''),
         jsonb_build_object('attempt', 1, 'at', now(), 'tag', $2::text, 'message', replace($3, '#', i::text), 'cause', ''))
     FROM generate_series(1, $4::integer) i`,
    [state, tag, message, n],
  )

for (const engine of engines) {
  describe(`listing on ${engine.name}`, () => {
    layer(engine.layer, { timeout: 60_000, excludeTestServices: true })((it) => {
      it.scoped("filters by args and meta containment, as written in the text form too", () =>
        Effect.gen(function* () {
          const jobs = yield* idle
          yield* jobs.insert(Notify, { user: { id: 42 }, channel: "mail" }, { meta: { tenant: "acme" } })
          yield* jobs.insert(Notify, { user: { id: 42 }, channel: "sms" }, { meta: { tenant: "other" } })
          yield* jobs.insert(Notify, { user: { id: 7 }, channel: "mail" }, { meta: { tenant: "acme" } })
          const channels = (records: ReadonlyArray<{ readonly args: unknown }>) =>
            records.map((r) => (r.args as { channel: string }).channel)
          expect(channels(yield* jobs.list({ args: { user: { id: 42 } } }))).toEqual(["sms", "mail"])
          const parsed = yield* JobFilter.parse(["args.user.id:42", "meta.tenant:acme"])
          expect(parsed).toEqual({ args: { user: { id: 42 } }, meta: { tenant: "acme" } })
          const both = yield* jobs.list(parsed)
          expect(channels(both)).toEqual(["mail"])
          expect(yield* jobs.list({ args: { user: { id: "42" } } })).toEqual([])
        }),
      )

      it.scoped("filters by resource, schedule, node, error text and time ranges", () =>
        Effect.gen(function* () {
          const sql = yield* SqlClient
          const jobs = yield* startJobs({ handlers: [echo], queues: {} })
          const post = yield* jobs.insert(Post, {}, { resource: "p-1" })
          yield* jobs.insert(Post, {}, { resource: "p-2" })
          const cron = yield* jobs.insert(Echo, { text: "cron" }, { meta: { schedule: "nightly" } })
          const failed = yield* jobs.insert(Echo, { text: "failed" })
          yield* sql.unsafe(
            `UPDATE ${jobs.schema}.jobs SET state = 'discarded', discarded_at = '2026-03-01T00:00:00Z',
               attempted_by = 'worker-9',
               errors = '[{"attempt":1,"at":"2026-03-01T00:00:00Z","tag":"SmtpRefused","message":"Mailbox full","cause":""}]'
             WHERE id = $1`,
            [failed.id],
          )
          const ids = (records: ReadonlyArray<{ readonly id: number }>) => records.map((r) => r.id)
          expect(ids(yield* jobs.list({ resource: { type: "post", id: "p-1" } }))).toEqual([post.id])
          expect(yield* jobs.list({ resource: { type: "post" } })).toHaveLength(2)
          expect(ids(yield* jobs.list({ schedule: "nightly" }))).toEqual([cron.id])
          expect(ids(yield* jobs.list({ node: "worker-9" }))).toEqual([failed.id])
          expect(ids(yield* jobs.list({ error: "mailbox FULL" }))).toEqual([failed.id])
          expect(ids(yield* jobs.list({ error: "smtprefused" }))).toEqual([failed.id])
          expect(yield* jobs.list({ error: "timeout" })).toEqual([])
          const finished = { from: new Date("2026-02-01T00:00:00Z"), to: new Date("2026-04-01T00:00:00Z") }
          expect(ids(yield* jobs.list({ finished }))).toEqual([failed.id])
          expect(yield* jobs.list({ finished: { to: new Date("2026-02-01T00:00:00Z") } })).toEqual([])
          const everything = yield* jobs.list({ inserted: { from: post.insertedAt } })
          expect(everything).toHaveLength(4)
          expect(yield* jobs.list({ inserted: { to: post.insertedAt } })).toEqual([])
          expect(
            yield* jobs.list({ type: ["publish", "echo"], scheduled: { from: new Date(0) } }),
          ).toHaveLength(4)
        }),
      )

      it.scoped("pages by cursor, newest or oldest first, without repeating or skipping a job", () =>
        Effect.gen(function* () {
          const jobs = yield* idle
          for (let n = 0; n < 7; n++) yield* jobs.insert(Echo, { text: `${n}` })
          yield* jobs.insert(Echo, { text: "other" }, { queue: "elsewhere" })
          const first = yield* jobs.listPage({ queue: "default", limit: 3 })
          expect(texts(first.jobs)).toEqual(["6", "5", "4"])
          // A job inserted between pages is newer than the cursor: it neither repeats nor shifts a page.
          yield* jobs.insert(Echo, { text: "late" })
          const second = yield* jobs.listPage({ queue: "default", limit: 3, cursor: first.next! })
          expect(texts(second.jobs)).toEqual(["3", "2", "1"])
          const third = yield* jobs.listPage({ queue: "default", limit: 3, cursor: second.next! })
          expect(texts(third.jobs)).toEqual(["0"])
          expect(third.next).toBeNull()
          const oldest = yield* jobs.listPage({ queue: "default", limit: 4, order: "oldest" })
          expect(texts(oldest.jobs)).toEqual(["0", "1", "2", "3"])
          const rest = yield* jobs.listPage({
            queue: "default",
            limit: 4,
            order: "oldest",
            cursor: oldest.next!,
          })
          expect(texts(rest.jobs)).toEqual(["4", "5", "6", "late"])
          expect(rest.next).toBeNull()
          // The older way to page still works.
          expect(texts(yield* jobs.list({ queue: "default", limit: 2, offset: 1 }))).toEqual(["6", "5"])
        }),
      )

      it.scoped("refuses a bad filter or cursor with InvalidJobOptions", () =>
        Effect.gen(function* () {
          const jobs = yield* idle
          for (let n = 0; n < 3; n++) yield* jobs.insert(Echo, { text: `${n}` })
          const { next } = yield* jobs.listPage({ limit: 1 })
          const refused: ReadonlyArray<Effect.Effect<unknown, { readonly _tag: string }>> = [
            jobs.list({ cursor: "not-a-cursor" }),
            jobs.list({ cursor: next!, queue: "default" }),
            jobs.list({ cursor: next!, order: "oldest" }),
            jobs.list({ cursor: next!, offset: 1 }),
            jobs.list({ state: "bogus" as any }),
            jobs.list({ limit: 0 }),
            jobs.list({ inserted: { from: new Date("nonsense") } }),
            jobs.list({ args: "text" as any }),
            jobs.list({ error: "" }),
            jobs.count({}, { exactUpTo: -1 }),
          ]
          for (const attempt of refused) {
            expect((yield* Effect.flip(attempt))._tag).toBe("InvalidJobOptions")
          }
        }),
      )

      it.scoped("counts exactly up to a threshold and estimates past it", () =>
        Effect.gen(function* () {
          const jobs = yield* idle
          yield* jobs.insertMany(
            Echo,
            Array.from({ length: 20 }, (_, n) => ({ text: `${n}` })),
          )
          yield* jobs.insert(Echo, { text: "x" }, { queue: "small" })
          expect(yield* jobs.count({ queue: "small" })).toEqual({ count: 1, estimated: false })
          expect(yield* jobs.count()).toEqual({ count: 21, estimated: false })
          const estimate = yield* jobs.count({ queue: "default" }, { exactUpTo: 5 })
          expect(estimate.estimated).toBe(true)
          // Never below what was counted before the threshold ran out.
          expect(estimate.count).toBeGreaterThanOrEqual(6)
        }),
      )

      it.scoped("cancels, retries and deletes every matching job in batches, answering how many", () =>
        Effect.gen(function* () {
          const jobs = yield* idle
          yield* jobs.insertMany(
            Echo,
            Array.from({ length: 5 }, (_, n) => ({ text: `${n}` })),
            { meta: { batch: "b1" } },
          )
          const bystander = yield* jobs.insert(Echo, { text: "bystander" })
          expect(yield* jobs.cancelAll({ meta: { batch: "b1" } }, { batchSize: 2 })).toBe(5)
          expect(yield* jobs.count({ state: "cancelled" })).toEqual({ count: 5, estimated: false })
          // Nothing left to cancel among them.
          expect(yield* jobs.cancelAll({ meta: { batch: "b1" } })).toBe(0)
          expect(yield* jobs.retryAll({ state: "cancelled" }, { batchSize: 3 })).toBe(5)
          expect(yield* jobs.count({ state: "available" })).toEqual({ count: 6, estimated: false })
          expect(yield* jobs.deleteAll({ meta: { batch: "b1" } }, { batchSize: 2 })).toBe(5)
          expect((yield* jobs.list()).map((j) => j.id)).toEqual([bystander.id])
          // An empty filter would act on every job: refused, and nothing changes.
          for (const attempt of [
            jobs.cancelAll({}),
            jobs.retryAll({}),
            jobs.deleteAll({ state: undefined }),
          ]) {
            expect((yield* Effect.flip(attempt))._tag).toBe("InvalidJobOptions")
          }
          expect(yield* jobs.list()).toHaveLength(1)
        }),
      )

      it.scoped("a bulk cancel interrupts a matching job that is executing", () =>
        Effect.gen(function* () {
          const { definition: Long, handler: long, started, interrupted } = yield* interruptibleJob("long")
          const jobs = yield* startJobs({ handlers: [long] })
          const job = yield* jobs.insert(Long, {})
          yield* Deferred.await(started)
          expect(yield* jobs.cancelAll({ type: "long" })).toBe(1)
          yield* Deferred.await(interrupted)
          yield* jobs.drain("default")
          expect((yield* jobs.get(job.id)).state).toBe("cancelled")
        }),
      )

      it.scoped("reads jobs through their definition: args and result decoded and typed", () =>
        Effect.gen(function* () {
          const sql = yield* SqlClient
          const jobs = yield* idle
          const job = yield* jobs.insert(Notify, { user: { id: 1 }, channel: "mail" })
          yield* sql.unsafe(
            `UPDATE ${jobs.schema}.jobs SET state = 'completed', completed_at = now(),
               result = '{"sentAt":"2026-05-01T10:00:00.000Z"}' WHERE id = $1`,
            [job.id],
          )
          const typed = yield* jobs.get(job.id, Notify)
          // No cast: the args and result have the definition's types.
          const channel: string = typed.args.channel
          expect(channel).toBe("mail")
          expect(typed.result?.sentAt).toEqual(new Date("2026-05-01T10:00:00.000Z"))
          expect(typed.isTerminal).toBe(true)
          const echoJob = yield* jobs.insert(Echo, { text: "hi" })
          const mismatch = yield* Effect.flip(jobs.get(echoJob.id, Notify))
          expect(mismatch._tag).toBe("JobTypeMismatch")
          expect(mismatch.message).toContain('"echo" job, not a "notify" one')
          const listed = yield* jobs.list({}, Notify)
          expect(listed.map((j) => j.args.user.id)).toEqual([1])
          const page = yield* jobs.listPage({ limit: 1 }, Echo)
          expect(page.jobs.map((j) => j.args.text)).toEqual(["hi"])
          expect((yield* Effect.flip(jobs.list({ type: "echo" }, Notify)))._tag).toBe("InvalidJobOptions")
          yield* sql.unsafe(`UPDATE ${jobs.schema}.jobs SET args = '{"user":{"id":"x"}}' WHERE id = $1`, [
            job.id,
          ])
          const undecodable = yield* Effect.flip(jobs.get(job.id, Notify))
          expect(undecodable._tag).toBe("JobDecodeError")
          expect((yield* Effect.flip(jobs.list({}, Notify)))._tag).toBe("JobDecodeError")
        }),
      )
      it.scoped(
        "groups failed jobs by their last error's tag and message with numbers and ids left out",
        () =>
          Effect.gen(function* () {
            const { sql, schema, client } = yield* clientOnly
            yield* failed(sql, schema, "retryable", 5, "HttpError", "order # got 503 from 10.0.0.#")
            yield* failed(sql, schema, "discarded", 2, "HttpError", "order #0 got 503 from 10.0.0.1")
            yield* failed(
              sql,
              schema,
              "discarded",
              1,
              "HttpError",
              "user 3f2b1c9e-1d2a-4b3c-8d4e-5f6a7b8c9d0e is gone",
            )
            yield* failed(sql, schema, "retryable", 1, "Timeout", "took 30001 ms")
            // A job that failed and then completed is no failure.
            yield* failed(sql, schema, "completed", 3, "Timeout", "took 30001 ms")
            const { groups, partial } = yield* client.failureGroups()
            expect(partial).toBe(false)
            expect(groups.map((g) => [g.tag, g.pattern, g.retryable, g.discarded])).toEqual([
              ["HttpError", "order N got N from N.N.N.N", 5, 2],
              expect.anything(),
              expect.anything(),
            ])
            expect(groups.slice(1).map((g) => [g.tag, g.pattern, g.retryable, g.discarded])).toEqual(
              expect.arrayContaining([
                ["HttpError", "user <uuid> is gone", 0, 1],
                ["Timeout", "took N ms", 1, 0],
              ]),
            )
            expect(groups[0]!.example).toMatch(/^order \d+ got 503 from 10\.0\.0\.\d+$/)
            const capped = yield* client.failureGroups({ scanned: 3 })
            expect(capped.partial).toBe(true)
            expect(capped.groups.reduce((n, g) => n + g.retryable + g.discarded, 0)).toBe(3)
          }),
      )

      it.scoped("a group's jobs are retried or discarded in batches, with progress after each", () =>
        Effect.gen(function* () {
          const { sql, schema, client } = yield* clientOnly
          yield* failed(sql, schema, "retryable", 5, "HttpError", "order # failed")
          yield* failed(sql, schema, "discarded", 2, "HttpError", "order # failed")
          yield* failed(sql, schema, "retryable", 2, "Timeout", "took # ms")
          const group = { tag: "HttpError", pattern: "order N failed" }
          const progress = yield* Ref.make<Array<{ selected: number; changed: number }>>([])
          const onBatch = (p: { selected: number; changed: number }) =>
            Ref.update(progress, (all) => [...all, p])
          const discarded = yield* client.discardAll(
            { errorGroup: group, state: "retryable" },
            { batchSize: 2, onBatch },
          )
          expect(discarded).toBe(5)
          expect(yield* Ref.get(progress)).toEqual([
            { selected: 2, changed: 2 },
            { selected: 4, changed: 4 },
            { selected: 5, changed: 5 },
          ])
          expect((yield* client.count({ errorGroup: group, state: "discarded" })).count).toBe(7)
          expect(
            yield* client.retryAll(
              { errorGroup: group, state: ["retryable", "discarded"] },
              { batchSize: 3 },
            ),
          ).toBe(7)
          expect((yield* client.count({ errorGroup: group, state: "available" })).count).toBe(7)
          // The other group is left as it was.
          expect((yield* client.count({ state: "retryable" })).count).toBe(2)
        }),
      )
    })
  })
}

describe("JobFilter.parse", () => {
  it("reads paths and values into containment objects", () => {
    expect(Either.getOrThrow(JobFilter.parse("args.user.id:42"))).toEqual({ args: { user: { id: 42 } } })
    expect(Either.getOrThrow(JobFilter.parse(["args.a.b:true", "args.a.c:x:y", 'meta.n:"7"']))).toEqual({
      args: { a: { b: true, c: "x:y" } },
      meta: { n: "7" },
    })
    expect(Either.getOrThrow(JobFilter.parse('args.tags:["a"]'))).toEqual({ args: { tags: ["a"] } })
    expect(Either.getOrThrow(JobFilter.parse([]))).toEqual({})
  })

  it("refuses a malformed condition with InvalidJobFilter", () => {
    for (const bad of ["args.user.id", "state:available", "args:1", "args..id:1", "args.id:", "args.a b:1"]) {
      const result = JobFilter.parse(bad)
      expect(Either.isLeft(result) && result.left._tag).toBe("InvalidJobFilter")
    }
    const clash = JobFilter.parse(["args.a:1", "args.a.b:2"])
    expect(Either.isLeft(clash) && clash.left.message).toContain("both a value and fields")
  })
})
