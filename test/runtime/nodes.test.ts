/**
 * Node registration and the rescue of jobs left by dead nodes.
 */
import { SqlClient } from "@effect/sql/SqlClient"
import { describe, expect, layer } from "@effect/vitest"
import { Effect, Metric } from "effect"
import { rescuedTotal } from "../../src/internal/observer.js"
import { dropSchema, engines, freshSchema } from "../support/engines.js"
import { awaitState, eventually, startJobs } from "../support/jobs.js"
import { Echo, echo, orphan, quickRescue } from "./fixtures.js"

for (const engine of engines) {
  describe(`runtime on ${engine.name}`, () => {
    layer(engine.layer, { timeout: 60_000, excludeTestServices: true })((it) => {
      it.scoped("registers this node while it runs and forgets it when it stops", () =>
        Effect.gen(function* () {
          const sql = yield* SqlClient
          const schema = freshSchema()
          yield* Effect.addFinalizer(() => dropSchema(sql, schema))
          const node = yield* Effect.scoped(
            Effect.gen(function* () {
              const jobs = yield* startJobs({ schema, handlers: [echo], queues: { default: 1, mail: 2 } })
              const nodes = yield* jobs.nodes
              expect(nodes.map((n) => [n.id, [...n.queues].sort(), n.pid])).toEqual([
                [jobs.node, ["default", "mail"], process.pid],
              ])
              return jobs.node
            }),
          )
          const left = yield* sql.unsafe(`SELECT id FROM ${schema}.nodes WHERE id = $1`, [node])
          expect(left).toEqual([])
        }),
      )

      it.scoped("rescues a job left executing by a node that stopped heartbeating, and runs it again", () =>
        Effect.gen(function* () {
          const jobs = yield* startJobs(quickRescue)
          const job = yield* jobs.insert(Echo, { text: "orphan" }, { queue: "other" })
          const ghost = yield* orphan(
            jobs.schema,
            "other",
            "ghost-node",
            "00000000-0000-4000-8000-0000000000ee",
          )
          yield* jobs.startQueue("other", 1)
          const done = yield* awaitState(jobs, job.id, "completed")
          expect(done.attempt).toBe(2)
          expect(done.errors.map((e) => [e.attempt, e.tag])).toEqual([[1, "Rescued"]])
          expect(done.errors[0]!.message).toContain("ghost-node")
          // The vanished node's late write is rejected: its lease was cleared by the rescue.
          const late = yield* ghost.finish(
            [
              {
                kind: "completed",
                id: job.id,
                lease: "00000000-0000-4000-8000-0000000000ee",
                result: "late",
              },
            ],
            new Date(),
          )
          expect(late.size).toBe(0)
        }),
      )

      it.scoped("discards a job rescued maxRescues times: it probably kills its process", () =>
        Effect.gen(function* () {
          const rescued = rescuedTotal.pipe(
            Metric.tagged("queue", "other"),
            Metric.tagged("type", Echo.type),
            Metric.tagged("state", "discarded"),
          )
          const before = (yield* Metric.value(rescued)).count
          const jobs = yield* startJobs({ ...quickRescue, maxRescues: 1 })
          const job = yield* jobs.insert(Echo, { text: "poison" }, { queue: "other" })
          yield* orphan(jobs.schema, "other", "ghost", "00000000-0000-4000-8000-0000000000ff")
          const discarded = yield* awaitState(jobs, job.id, "discarded")
          expect(discarded.errors.map((e) => e.tag)).toEqual(["Rescued"])
          // Counted once the rescuer has its answer, which may be just after the job reads discarded.
          yield* eventually(
            Effect.flatMap(Metric.value(rescued), ({ count }) =>
              count === before + 1 ? Effect.void : Effect.fail(count),
            ),
          )
        }),
      )
    })
  })
}
