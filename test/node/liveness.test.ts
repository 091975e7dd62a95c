/**
 * What one node may conclude about another: a notification is only a hint (anyone who can
 * connect can send one), time compared between nodes is the database's, and a node stays
 * live however busy its handlers keep the app's connections.
 */
import { SqlClient } from "@effect/sql/SqlClient"
import { describe, expect, layer } from "@effect/vitest"
import { Deferred, Effect, Layer, Schema } from "effect"
import * as Job from "../../src/Job.js"
import * as JobsPg from "../../src/JobsPg.js"
import { dropSchema, type Engine, engines, freshSchema, postgresUrl } from "../support/engines.js"
import { awaitState, eventually, realSleep, startJobs } from "../support/jobs.js"
import { skewedClock } from "../support/skewedClock.js"

const Sleepy = Job.make("sleepy", { args: Schema.Struct({ millis: Schema.Number }) })

/** A schema both nodes of a test share, dropped at the end. */
const sharedSchema = Effect.gen(function* () {
  const sql = yield* SqlClient
  const schema = freshSchema()
  yield* Effect.addFinalizer(() => dropSchema(sql, schema))
  return schema
})

/** Sends a notification on the schema's signal channel as any role could, with raw SQL. */
const forge = (schema: string, payload: string) =>
  Effect.flatMap(SqlClient, (sql) => sql.unsafe(`SELECT pg_notify($1, $2)`, [`${schema}_signals`, payload]))

/** Counts how many of the job type's handlers run at once, at most. */
const concurrencyProbe = Effect.gen(function* () {
  let running = 0
  let most = 0
  const handler = Sleepy.handler(({ args }) =>
    Effect.acquireUseRelease(
      Effect.sync(() => {
        running++
        most = Math.max(most, running)
      }),
      () => Effect.sleep(args.millis),
      () =>
        Effect.sync(() => {
          running--
        }),
    ),
  )
  return { handler, most: () => most }
})

const forgedNotifications = (engine: Engine) =>
  describe(`forged notifications on ${engine.name}`, () => {
    layer(engine.layer, { timeout: 60_000, excludeTestServices: true })((it) => {
      it.scoped("a forged cancel leaves the job running to completion", () =>
        Effect.gen(function* () {
          const started = yield* Deferred.make<void>()
          // Every start, and every run that ended by interruption.
          let starts = 0
          let interrupted = 0
          const handler = Sleepy.handler(({ args }) =>
            Effect.sync(() => starts++).pipe(
              Effect.zipRight(Deferred.succeed(started, undefined)),
              Effect.zipRight(Effect.sleep(args.millis)),
              Effect.onInterrupt(() => Effect.sync(() => interrupted++)),
            ),
          )
          const jobs = yield* startJobs({ handlers: [handler] })
          const job = yield* jobs.insert(Sleepy, { millis: 800 })
          yield* Deferred.await(started)
          yield* forge(jobs.schema, JSON.stringify({ kind: "cancel", id: job.id }))
          const done = yield* awaitState(jobs, job.id, "completed")
          expect(done.attempt).toBe(1)
          expect(done.errors).toEqual([])
          expect({ starts, interrupted }).toEqual({ starts: 1, interrupted: 0 })
        }),
      )

      it.scoped("forged scales leave the queue at its configured concurrency, running", () =>
        Effect.gen(function* () {
          const probe = yield* concurrencyProbe
          const jobs = yield* startJobs({ handlers: [probe.handler], queues: { default: 2 } })
          for (const concurrency of [1e9, -1, 2.5, 0, "x"]) {
            yield* forge(jobs.schema, JSON.stringify({ kind: "queue", queue: "default", concurrency }))
          }
          yield* forge(jobs.schema, "not json")
          yield* realSleep(200)
          expect((yield* jobs.queues)[0]!.limit).toBe(2)
          yield* jobs.insertMany(
            Sleepy,
            Array.from({ length: 8 }, () => ({ millis: 100 })),
          )
          yield* eventually(
            Effect.flatMap(jobs.queueInfo("default"), (info) =>
              info.states.completed.count === 8 ? Effect.void : Effect.fail("not yet"),
            ),
          )
          expect(probe.most()).toBe(2)
          expect((yield* jobs.queues)[0]!.limit).toBe(2)
        }),
      )

      it.scoped("a forged pause stops no node; a stored one does", () =>
        Effect.gen(function* () {
          const schema = yield* sharedSchema
          const handler = Sleepy.handler(({ args }) => Effect.sleep(args.millis))
          const a = yield* startJobs({ schema, handlers: [handler] })
          const b = yield* startJobs({ schema, handlers: [handler] })
          yield* forge(schema, JSON.stringify({ kind: "queue", queue: "default", paused: true }))
          yield* realSleep(200)
          expect((yield* a.queues)[0]!.paused).toBe(false)
          expect((yield* b.queues)[0]!.paused).toBe(false)
          const job = yield* a.insert(Sleepy, { millis: 1 })
          yield* awaitState(a, job.id, "completed")
          // A real pause is stored, and a forged resume does not undo it.
          yield* a.pauseQueue("default")
          yield* eventually(
            Effect.flatMap(b.queues, (qs) => (qs[0]!.paused ? Effect.void : Effect.fail("not yet"))),
          )
          yield* forge(schema, JSON.stringify({ kind: "queue", queue: "default", paused: false }))
          yield* realSleep(200)
          expect((yield* b.queues)[0]!.paused).toBe(true)
        }),
      )

      it.scoped("a scale is stored: every node follows it, a node starting later too", () =>
        Effect.gen(function* () {
          const schema = yield* sharedSchema
          const handler = Sleepy.handler(({ args }) => Effect.sleep(args.millis))
          const a = yield* startJobs({ schema, handlers: [handler], queues: { default: 2 } })
          const b = yield* startJobs({ schema, handlers: [handler], queues: { default: 2 } })
          yield* a.scaleQueue("default", 5)
          yield* eventually(
            Effect.flatMap(b.queues, (qs) => (qs[0]!.limit === 5 ? Effect.void : Effect.fail("not yet"))),
          )
          const c = yield* startJobs({ schema, handlers: [handler], queues: { default: 2 } })
          expect((yield* c.queues)[0]!.limit).toBe(5)
          // A signal that repeats the stored state changes nothing, a local scale included.
          yield* b.scaleQueue("default", 3, { localOnly: true })
          yield* forge(schema, JSON.stringify({ kind: "queue", queue: "default", concurrency: 9 }))
          yield* realSleep(200)
          expect((yield* b.queues)[0]!.limit).toBe(3)
        }),
      )
    })
  })

const clockSkew = (engine: Engine) =>
  describe(`clock skew on ${engine.name}`, () => {
    layer(engine.layer, { timeout: 60_000, excludeTestServices: true })((it) => {
      it.scoped("a node 60 s ahead neither takes leadership from a live leader nor rescues its jobs", () =>
        Effect.gen(function* () {
          const schema = yield* sharedSchema
          const started = yield* Deferred.make<void>()
          const handler = Sleepy.handler(({ args }) =>
            Effect.zipRight(Deferred.succeed(started, undefined), Effect.sleep(args.millis)),
          )
          const settings = {
            schema,
            handlers: [handler],
            // A term is 1.5 intervals: long enough that a busy machine still renews in time.
            heartbeatInterval: "1 second",
            nodeTimeout: "3 seconds",
          } as const
          const healthy = yield* startJobs(settings)
          yield* eventually(
            Effect.flatMap(healthy.leader, (l) =>
              l === healthy.node ? Effect.void : Effect.fail("not yet"),
            ),
          )
          // Runs for several node timeouts and rescue rounds of the skewed node.
          const job = yield* healthy.insert(Sleepy, { millis: 8000 })
          yield* Deferred.await(started)
          const ahead = yield* startJobs({ ...settings, queues: {} }).pipe(
            Effect.withClock(skewedClock(60_000)),
          )
          yield* realSleep(4000)
          expect(yield* ahead.leader).toBe(healthy.node)
          expect((yield* ahead.nodes).map((n) => n.id).sort()).toEqual([healthy.node, ahead.node].sort())
          const done = yield* awaitState(healthy, job.id, "completed")
          expect(done.attempt).toBe(1)
          expect(done.rescues).toBe(0)
          expect(done.errors).toEqual([])
        }),
      )
    })
  })

/**
 * Handlers that hold one of the app's connections for the whole attempt (a transaction),
 * more of them than the pool has connections. Each run is recorded in a ledger table by the
 * handler's own transaction, so the ledger has a row per run whatever happens to the job.
 */
const Holding = Job.make("holding", { args: Schema.Struct({ millis: Schema.Number }) })
const holding = (schema: string) =>
  Holding.handler(({ args, job }) =>
    Effect.flatMap(SqlClient, (sql) =>
      sql.withTransaction(
        Effect.zipRight(
          sql.unsafe(`INSERT INTO ${schema}.ledger (job_id, attempt) VALUES ($1, $2)`, [job.id, job.attempt]),
          Effect.sleep(args.millis),
        ),
      ),
    ),
  )

const ledgerRuns = (schema: string) =>
  Effect.flatMap(SqlClient, (sql) =>
    sql.unsafe<{ job_id: string; runs: number }>(
      `SELECT job_id, count(*)::integer AS runs FROM ${schema}.ledger GROUP BY job_id ORDER BY job_id`,
    ),
  )

describe("liveness on postgres", () => {
  const postgres = engines.find((engine) => engine.name === "postgres")
  if (postgres === undefined) return
  layer(postgres.layer, { timeout: 120_000, excludeTestServices: true })((it) => {
    it.scoped("handlers holding every connection of the pool do not get a live node's jobs run twice", () =>
      Effect.gen(function* () {
        const schema = yield* sharedSchema
        const sql = yield* SqlClient
        // A healthy leader that runs no queue of its own: the rescuer.
        const leader = yield* startJobs({
          schema,
          queues: {},
          heartbeatInterval: "200 millis",
          nodeTimeout: "1 second",
        })
        yield* sql.unsafe(`CREATE TABLE ${schema}.ledger (job_id bigint NOT NULL, attempt integer NOT NULL)`)
        const small = yield* Layer.build(JobsPg.layer({ url: postgresUrl, maxConnections: 3 }))
        const starved = yield* startJobs({
          schema,
          handlers: [holding(schema)],
          queues: { default: 12 },
          heartbeatInterval: "200 millis",
          nodeTimeout: "1 second",
        }).pipe(Effect.provide(small))
        expect(yield* leader.leader).toBe(leader.node)
        const inserted = yield* starved.insertMany(
          Holding,
          Array.from({ length: 12 }, () => ({ millis: 1000 })),
        )
        yield* eventually(
          Effect.flatMap(starved.queueInfo("default"), (info) =>
            info.states.completed.count === 12 ? Effect.void : Effect.fail("not yet"),
          ),
          "60 seconds",
        )
        const runs = yield* ledgerRuns(schema)
        expect(runs.map((r) => Number(r.job_id))).toEqual(inserted.map((j) => j.id))
        expect(runs.filter((r) => r.runs > 1)).toEqual([])
      }),
    )
  })
})

describe("the liveness connection on postgres", () => {
  const postgres = engines.find((engine) => engine.name === "postgres")
  if (postgres === undefined) return
  layer(postgres.layer, { timeout: 60_000, excludeTestServices: true })((it) => {
    it.scoped("is opened anew when terminated, and the node stays live", () =>
      Effect.gen(function* () {
        const sql = yield* SqlClient
        const name = `liveness-test-${process.pid}`
        const own = yield* Layer.build(
          JobsPg.layer({ url: postgresUrl, maxConnections: 2, applicationName: name }),
        )
        const handler = Sleepy.handler(({ args }) => Effect.sleep(args.millis))
        const jobs = yield* startJobs({
          handlers: [handler],
          heartbeatInterval: "100 millis",
          nodeTimeout: "600 millis",
        }).pipe(Effect.provide(own))
        const [before] = yield* sql.unsafe<{ count: number }>(
          `SELECT count(*)::integer AS count FROM pg_stat_activity WHERE application_name = $1`,
          [`${name} liveness`],
        )
        expect(before!.count).toBe(1)
        for (let round = 0; round < 3; round++) {
          yield* sql.unsafe(
            `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1`,
            [`${name} liveness`],
          )
          yield* realSleep(300)
        }
        yield* realSleep(700)
        expect((yield* jobs.nodes).map((n) => n.id)).toEqual([jobs.node])
        const job = yield* jobs.insert(Sleepy, { millis: 1 })
        yield* awaitState(jobs, job.id, "completed")
      }),
    )
  })
})

const staleHeartbeat = (engine: Engine) =>
  describe(`a stale heartbeat on ${engine.name}`, () => {
    layer(engine.layer, { timeout: 60_000, excludeTestServices: true })((it) => {
      it.scoped(
        "a node whose heartbeat fails for longer than nodeTimeout claims nothing until it succeeds",
        () =>
          Effect.gen(function* () {
            const sql = yield* SqlClient
            const handler = Sleepy.handler(({ args }) => Effect.sleep(args.millis))
            const jobs = yield* startJobs({
              handlers: [handler],
              heartbeatInterval: "100 millis",
              nodeTimeout: "600 millis",
            })
            yield* sql.unsafe(`ALTER TABLE ${jobs.schema}.nodes RENAME TO nodes_away`)
            yield* realSleep(1200)
            const job = yield* jobs.insert(Sleepy, { millis: 1 })
            yield* realSleep(800)
            expect((yield* jobs.get(job.id)).state).toBe("available")
            yield* sql.unsafe(`ALTER TABLE ${jobs.schema}.nodes_away RENAME TO nodes`)
            const done = yield* awaitState(jobs, job.id, "completed")
            expect(done.attempt).toBe(1)
          }),
      )
    })
  })

for (const engine of engines) {
  forgedNotifications(engine)
  clockSkew(engine)
  staleHeartbeat(engine)
}
