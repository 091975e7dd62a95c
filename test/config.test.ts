/**
 * Settings: refused when the layer is built with one typed error naming the option and the
 * value; read from `Config` (the environment by default); node names one live process at a time.
 */
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { SqlClient } from "@effect/sql/SqlClient"
import { describe, expect, it, layer } from "@effect/vitest"
import { Config, ConfigProvider, Context, Effect, Layer, Logger, Schema } from "effect"
import * as Job from "../src/Job.js"
import * as Jobs from "../src/Jobs.js"
import * as JobsPg from "../src/JobsPg.js"
import * as JobsPglite from "../src/JobsPglite.js"
import type { Listener } from "../src/Listener.js"
import {
  dropSchema,
  engines,
  freshSchema,
  pglite,
  postgresAvailable,
  postgresUrl,
} from "./support/engines.js"
import { awaitState, startJobs } from "./support/jobs.js"

const Echo = Job.make("echo", { args: Schema.Struct({ text: Schema.String }) })
const echo = Echo.handler(({ args }) => Effect.succeed(args.text))

const refused: ReadonlyArray<readonly [string, Jobs.Options, string, string]> = [
  // [what, options, the option named, the value shown]
  ["nodeTimeout equal to heartbeatInterval", { nodeTimeout: "5 seconds" }, "nodeTimeout", '"5 seconds"'],
  [
    "nodeTimeout under twice heartbeatInterval",
    { heartbeatInterval: "1 second", nodeTimeout: 1500 },
    "nodeTimeout",
    "1500",
  ],
  ["completionBatchSize 0", { completionBatchSize: 0 }, "completionBatchSize", "0"],
  ["completionBatchSize negative", { completionBatchSize: -3 }, "completionBatchSize", "-3"],
  ["completionBatchSize fractional", { completionBatchSize: 2.5 }, "completionBatchSize", "2.5"],
  ["pollInterval 0", { pollInterval: 0 }, "pollInterval", "0"],
  ["heartbeatInterval 0", { heartbeatInterval: "0 millis" }, "heartbeatInterval", '"0 millis"'],
  ["stageInterval negative", { stageInterval: -10 }, "stageInterval", "-10"],
  ["pingInterval not a duration", { pingInterval: "soon" as never }, "pingInterval", '"soon"'],
  ["prune.interval 0", { prune: { interval: 0 } }, "prune.interval", "0"],
  ["prune.batchSize 0", { prune: { batchSize: 0 } }, "prune.batchSize", "0"],
  ["vacuum.interval 0", { vacuum: { interval: 0 } }, "vacuum.interval", "0"],
  ["eventsCapacity 0", { eventsCapacity: 0 }, "eventsCapacity", "0"],
  ["maxPayloadBytes NaN", { maxPayloadBytes: Number.NaN }, "maxPayloadBytes", "NaN"],
  ["maxPayloadBytes 0", { maxPayloadBytes: 0 }, "maxPayloadBytes", "0"],
  ["queue concurrency 0", { queues: { default: 0 } }, "queues.default.concurrency", "0"],
  [
    "queue concurrency fractional",
    { queues: { mail: { concurrency: 1.5 } } },
    "queues.mail.concurrency",
    "1.5",
  ],
  ["queue name refused", { queues: { "bad name": 1 } }, 'queues["bad name"]', '"bad name"'],
  [
    "a queue that is its own dead-letter queue",
    { queues: { mail: { concurrency: 1, deadLetter: "mail" } } },
    "queues.mail.deadLetter",
    "a queue cannot be its own dead-letter queue",
  ],
  [
    "dead-letter queues in a cycle",
    {
      queues: {
        mail: { concurrency: 1, deadLetter: "mail-dead" },
        "mail-dead": { concurrency: 1, deadLetter: "mail" },
      },
    },
    "queues",
    "dead-letter queues form a cycle: mail → mail-dead → mail",
  ],
  ["node name too long", { node: "n".repeat(201) }, "node", "201 characters"],
  ["node name with a newline", { node: "a\nb" }, "node", '"a\\nb"'],
  ["schema name", { schema: "Public" }, "schema", '"Public"'],
  [
    "a definition timeout of 0",
    { handlers: [Job.make("zero", { args: Schema.Struct({}), timeout: 0 }).handler(() => Effect.void)] },
    'handlers["zero"].timeout',
    "0",
  ],
  [
    "a negative definition timeout",
    { handlers: [Job.make("neg", { args: Schema.Struct({}), timeout: -5 }).handler(() => Effect.void)] },
    'handlers["neg"].timeout',
    "0",
  ],
]

describe("settings refused at layer build", () => {
  layer(pglite.layer, { timeout: 60_000, excludeTestServices: true })((it) => {
    for (const [what, options, option, value] of refused) {
      it.scoped(`refuses ${what} with InvalidConfig, creating nothing`, () =>
        Effect.gen(function* () {
          const sql = yield* SqlClient
          const schema = freshSchema()
          const error = yield* Effect.flip(startJobs({ ...options, schema: options.schema ?? schema }))
          expect(error).toMatchObject({ _tag: "InvalidConfig", option })
          const message = (error as { message: string }).message
          expect(message).toContain(`option ${option} is `)
          expect(message).toContain(value)
          const exists = yield* sql<{
            n: number
          }>`SELECT count(*)::int AS n FROM pg_namespace WHERE nspname = ${schema}`
          expect(exists[0]!.n).toBe(0)
        }),
      )
    }

    it.scoped("says by how much nodeTimeout must exceed heartbeatInterval", () =>
      Effect.gen(function* () {
        const error = yield* Effect.flip(
          startJobs({ heartbeatInterval: "2 seconds", nodeTimeout: "3 seconds" }),
        )
        expect((error as { message: string }).message).toContain(
          "at least 2 times heartbeatInterval (2s), that is 4s",
        )
        // Twice is enough.
        yield* startJobs({ heartbeatInterval: "2 seconds", nodeTimeout: "4 seconds" })
      }),
    )

    it.scoped("refuses scheduleIn text that is no duration with InvalidJobOptions", () =>
      Effect.gen(function* () {
        const jobs = yield* startJobs({ handlers: [echo] })
        for (const scheduleIn of ["Infinity", "soon", "-"]) {
          const error = yield* Effect.flip(
            jobs.insert(Echo, { text: "x" }, { scheduleIn: scheduleIn as never }),
          )
          expect(error._tag).toBe("InvalidJobOptions")
          expect(error.message).toContain(`scheduleIn "${scheduleIn}" is not a duration`)
        }
        expect(yield* jobs.list()).toHaveLength(0)
      }),
    )

    it.scoped("names the jobs that hold a shutdown past its timeout", () =>
      Effect.gen(function* () {
        const logs: Array<string> = []
        const Stubborn = Job.make("stubborn", { args: Schema.Struct({}) })
        const stubborn = Stubborn.handler(() => Effect.uninterruptible(Effect.sleep("600 millis")))
        const id = yield* Effect.scoped(
          Effect.gen(function* () {
            const jobs = yield* startJobs({ handlers: [stubborn], shutdownTimeout: "50 millis" })
            const job = yield* jobs.insert(Stubborn, {})
            yield* awaitState(jobs, job.id, "executing")
            return job.id
          }),
        ).pipe(
          Effect.provide(
            Logger.add(
              Logger.make(({ message }) => {
                logs.push(String(message))
              }),
            ),
          ),
        )
        const held = logs.find((line) => line.includes("after the shutdown timeout"))
        expect(held).toBeDefined()
        expect(held).toContain("queue default")
        expect(held).toContain(`${id} (stubborn)`)
      }),
    )
  })
})

for (const engine of engines) {
  describe(`node names and schema versions on ${engine.name}`, () => {
    layer(engine.layer, { timeout: 60_000, excludeTestServices: true })((it) => {
      it.scoped("refuses a node name a live node holds; frees it when that node stops", () =>
        Effect.gen(function* () {
          const schema = freshSchema()
          const sql = yield* SqlClient
          yield* Effect.addFinalizer(() => dropSchema(sql, schema))
          yield* Effect.scoped(
            Effect.gen(function* () {
              const first = yield* startJobs({ schema, node: "twin" })
              expect(first.node).toBe("twin")
              const error = yield* Effect.flip(startJobs({ schema, node: "twin" }))
              expect(error).toMatchObject({ _tag: "NodeNameInUse", node: "twin" })
              expect((error as { message: string }).message).toContain(
                'node name "twin" is held by a live node',
              )
              expect((yield* first.nodes).map((n) => n.id)).toEqual(["twin"])
            }),
          )
          const again = yield* startJobs({ schema, node: "twin" })
          expect(again.node).toBe("twin")
        }),
      )

      it.scoped("reuses a dead node's name and releases the jobs it left executing", () =>
        Effect.gen(function* () {
          const schema = freshSchema()
          const sql = yield* SqlClient
          yield* Effect.addFinalizer(() => dropSchema(sql, schema))
          const jobId = yield* Effect.scoped(
            Effect.gen(function* () {
              const before = yield* startJobs({ schema, node: "before", queues: { other: 1 } })
              return (yield* before.insert(Echo, { text: "orphaned" })).id
            }),
          )
          // A process named "crashed" claimed the job and was killed: its heartbeat is an hour old.
          yield* sql.unsafe(
            `UPDATE ${schema}.jobs SET state = 'executing', attempt = 1, attempted_by = 'crashed',
               attempted_at = now(), lease = gen_random_uuid() WHERE id = $1`,
            [jobId],
          )
          yield* sql.unsafe(
            `INSERT INTO ${schema}.nodes (id, host, pid, queues, started_at, heartbeat_at)
             VALUES ('crashed', 'h', 1, '[]'::jsonb, now() - interval '2 hours', now() - interval '1 hour')`,
          )
          const jobs = yield* startJobs({ schema, node: "crashed", handlers: [echo] })
          const done = yield* awaitState(jobs, jobId, "completed")
          expect(done.attempt).toBe(2)
          expect(done.errors.map((e) => e.tag)).toEqual(["Rescued"])
        }),
      )

      it.scoped("refuses a schema migrated by a newer version, naming both levels", () =>
        Effect.gen(function* () {
          const schema = freshSchema()
          const sql = yield* SqlClient
          yield* Effect.addFinalizer(() => dropSchema(sql, schema))
          yield* Effect.scoped(startJobs({ schema }))
          yield* sql.unsafe(
            `INSERT INTO ${schema}.migrations (version, name) VALUES (9999, 'from the future')`,
          )
          const error = yield* Effect.flip(startJobs({ schema }))
          expect(error).toMatchObject({ _tag: "SchemaTooNew", schema, found: 9999 })
          const supported = (error as { supported: number }).supported
          expect(supported).toBeGreaterThan(0)
          expect((error as { message: string }).message).toContain(
            `at migration 9999, newer than the ${supported}`,
          )
        }),
      )

      it.scoped("carries the server's message and SQLSTATE in DatabaseError", () =>
        Effect.gen(function* () {
          const jobs = yield* startJobs({ queues: { other: 1 } })
          const sql = yield* SqlClient
          yield* sql.unsafe(`ALTER TABLE ${jobs.schema}.jobs RENAME TO jobs_gone`)
          const error = yield* Effect.flip(jobs.get(1))
          expect(error._tag).toBe("DatabaseError")
          expect(error.message).toContain(`relation "${jobs.schema}.jobs" does not exist`)
          expect(error).toMatchObject({ code: "42P01" })
          yield* sql.unsafe(`ALTER TABLE ${jobs.schema}.jobs_gone RENAME TO jobs`)
        }),
      )
    })
  })
}

/** Builds `Jobs` from a layer in the test's scope, answering the service. */
const build = <E>(
  jobsLayer: Layer.Layer<Jobs.Jobs, E, SqlClient | Listener>,
  values: Record<string, string>,
) =>
  Effect.gen(function* () {
    const context = yield* Layer.buildWithScope(
      jobsLayer.pipe(
        Layer.provide(Layer.setConfigProvider(ConfigProvider.fromMap(new Map(Object.entries(values))))),
      ),
      yield* Effect.scope,
    )
    return Context.get(context, Jobs.Jobs)
  })

describe("layerConfig", () => {
  layer(pglite.layer, { timeout: 60_000, excludeTestServices: true })((it) => {
    it.scoped("Jobs.layerConfig() reads the documented environment variables", () =>
      Effect.gen(function* () {
        const schema = freshSchema()
        const sql = yield* SqlClient
        yield* Effect.addFinalizer(() => dropSchema(sql, schema))
        const jobs = yield* build(Jobs.layerConfig({ handlers: [echo] }), {
          EFFECT_JOBS_SCHEMA: schema,
          EFFECT_JOBS_NODE: "from-env",
          EFFECT_JOBS_QUEUES: "default:3, mail:2",
          EFFECT_JOBS_POLL_INTERVAL: "200",
          EFFECT_JOBS_HEARTBEAT_INTERVAL: "1 second",
          EFFECT_JOBS_NODE_TIMEOUT: "5 seconds",
          EFFECT_JOBS_SHUTDOWN_TIMEOUT: "1 second",
        })
        expect(jobs.node).toBe("from-env")
        expect((yield* jobs.queues).map((q) => [q.name, q.limit]).sort()).toEqual([
          ["default", 3],
          ["mail", 2],
        ])
        const job = yield* jobs.insert(Echo, { text: "env" })
        yield* awaitState(jobs, job.id, "completed")
        const stored = yield* sql.unsafe<{ n: number }>(`SELECT count(*)::int AS n FROM ${schema}.jobs`)
        expect(stored[0]!.n).toBe(1)
      }),
    )

    it.scoped("Jobs.layerConfig: a bad variable is InvalidConfig naming the option and the value", () =>
      Effect.gen(function* () {
        const cases: ReadonlyArray<readonly [Record<string, string>, string, string]> = [
          [{ EFFECT_JOBS_COMPLETION_BATCH_SIZE: "zero" }, "completionBatchSize", '"zero"'],
          [{ EFFECT_JOBS_COMPLETION_BATCH_SIZE: "0" }, "completionBatchSize", "0"],
          [{ EFFECT_JOBS_QUEUES: "default:x" }, "queues.default.concurrency", '"x"'],
          [{ EFFECT_JOBS_QUEUES: "default:0" }, "queues.default.concurrency", "0"],
          [{ EFFECT_JOBS_HEARTBEAT_INTERVAL: "0" }, "heartbeatInterval", '"0"'],
          [{ EFFECT_JOBS_POLL_INTERVAL: "fast" }, "pollInterval", '"fast"'],
          [{ EFFECT_JOBS_NODE_TIMEOUT: "1 second" }, "nodeTimeout", '"1 second"'],
        ]
        for (const [values, option, value] of cases) {
          const error = yield* Effect.flip(build(Jobs.layerConfig({ schema: freshSchema() }), values))
          expect(error).toMatchObject({ _tag: "InvalidConfig", option })
          expect((error as { message: string }).message).toContain(`option ${option} is ${value}`)
        }
      }),
    )

    it.scoped("Jobs.layerConfig takes a Config.Wrap of options, overriding those given in code", () =>
      Effect.gen(function* () {
        const schema = freshSchema()
        const sql = yield* SqlClient
        yield* Effect.addFinalizer(() => dropSchema(sql, schema))
        const jobs = yield* build(
          Jobs.layerConfig(
            { schema, node: "in-code", queues: { default: 1 } },
            { node: Config.string("MY_NODE"), queues: Config.succeed({ default: 4 }) },
          ),
          { MY_NODE: "wrapped" },
        )
        expect(jobs.node).toBe("wrapped")
        expect((yield* jobs.queues).map((q) => q.limit)).toEqual([4])
        const missing = yield* Effect.flip(
          build(Jobs.layerConfig({ schema: freshSchema() }, { node: Config.string("NOT_SET") }), {}),
        )
        expect(missing).toMatchObject({ _tag: "InvalidConfig", option: "NOT_SET", value: "missing" })
      }),
    )
  })

  it.scoped("JobsPglite.layerConfig() keeps the database in EFFECT_JOBS_PGLITE_DIR", () =>
    Effect.gen(function* () {
      const dir = mkdtempSync(join(tmpdir(), "effect-jobs-config-"))
      yield* Effect.addFinalizer(() => Effect.sync(() => rmSync(dir, { recursive: true, force: true })))
      const env = Layer.setConfigProvider(ConfigProvider.fromMap(new Map([["EFFECT_JOBS_PGLITE_DIR", dir]])))
      yield* Effect.gen(function* () {
        yield* (yield* SqlClient).unsafe("CREATE TABLE kept (id int)")
      }).pipe(Effect.provide(JobsPglite.layerConfig().pipe(Layer.provide(env))))
      const rows = yield* Effect.gen(function* () {
        return yield* (yield* SqlClient).unsafe("SELECT count(*)::int AS n FROM kept")
      }).pipe(Effect.provide(JobsPglite.layer({ dataDir: dir })))
      expect(rows).toEqual([{ n: 0 }])
    }),
  )

  it.scoped.skipIf(!postgresAvailable)(
    "JobsPg.layerConfig() connects to DATABASE_URL; without it, InvalidConfig",
    () =>
      Effect.gen(function* () {
        const env = (values: Array<[string, string]>) =>
          Layer.setConfigProvider(ConfigProvider.fromMap(new Map(values)))
        const rows = yield* Effect.gen(function* () {
          return yield* (yield* SqlClient).unsafe("SELECT 1 AS one")
        }).pipe(
          Effect.provide(JobsPg.layerConfig().pipe(Layer.provide(env([["DATABASE_URL", postgresUrl]])))),
        )
        expect(rows).toEqual([{ one: 1 }])
        const error = yield* SqlClient.pipe(
          Effect.provide(JobsPg.layerConfig().pipe(Layer.provide(env([])))),
          Effect.flip,
        )
        expect(error).toMatchObject({ _tag: "InvalidConfig", option: "DATABASE_URL", value: "missing" })
      }),
  )
})
