/**
 * Failed jobs grouped by their last error, and the bulk actions an operator takes on a group:
 * retry it, or discard its retryable jobs, a batch at a time with progress.
 */
import { SqlClient } from "@effect/sql/SqlClient"
import { describe, expect, layer } from "@effect/vitest"
import { Context, Effect, Layer, Ref } from "effect"
import * as JobsClient from "../../src/JobsClient.js"
import { dropSchema, engines, freshSchema } from "../support/engines.js"

const setUp = Effect.gen(function* () {
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
  describe(`failure groups on ${engine.name}`, () => {
    layer(engine.layer, { timeout: 60_000, excludeTestServices: true })((it) => {
      it.scoped(
        "groups failed jobs by their last error's tag and message with numbers and ids left out",
        () =>
          Effect.gen(function* () {
            const { sql, schema, client } = yield* setUp
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
          const { sql, schema, client } = yield* setUp
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
