/**
 * What shutdown does to running jobs.
 */
import { SqlClient } from "@effect/sql/SqlClient"
import { describe, expect, layer } from "@effect/vitest"
import { Effect, Ref, Schema } from "effect"
import * as Job from "../../src/Job.js"
import { dropSchema, engines, freshSchema } from "../support/engines.js"
import { eventually, startJobs } from "../support/jobs.js"

for (const engine of engines) {
  describe(`runtime on ${engine.name}`, () => {
    layer(engine.layer, { timeout: 60_000, excludeTestServices: true })((it) => {
      it.scoped(
        "on shutdown lets a short job finish and puts a long one back without using its attempt",
        () =>
          Effect.gen(function* () {
            const sql = yield* SqlClient
            const schema = freshSchema()
            yield* Effect.addFinalizer(() => dropSchema(sql, schema))
            const started = yield* Ref.make(0)
            const Work = Job.make("work", { args: Schema.Struct({ millis: Schema.Number }) })
            const work = Work.handler(({ args }) =>
              Effect.zipRight(
                Ref.update(started, (n) => n + 1),
                Effect.sleep(args.millis),
              ),
            )
            const [short, long] = yield* Effect.scoped(
              Effect.gen(function* () {
                const jobs = yield* startJobs({ schema, handlers: [work], shutdownTimeout: "500 millis" })
                const short = yield* jobs.insert(Work, { millis: 200 })
                const long = yield* jobs.insert(Work, { millis: 60_000 })
                yield* eventually(
                  Effect.flatMap(Ref.get(started), (n) => (n === 2 ? Effect.void : Effect.fail("wait"))),
                )
                return [short.id, long.id] as const
              }),
            )
            const rows = yield* sql.unsafe<{ id: string; state: string; attempt: number }>(
              `SELECT id, state, attempt FROM ${schema}.jobs ORDER BY id`,
            )
            expect(rows.map((r) => [Number(r.id), r.state, Number(r.attempt)])).toEqual([
              [short, "completed", 1],
              [long, "available", 0],
            ])
          }),
      )
    })
  })
}
