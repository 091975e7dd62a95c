/**
 * The producer-only client: it joins no cluster (no node row, no leadership), its inserts
 * wake and run on workers elsewhere, its admin calls reach them, and it refuses a schema it
 * does not know without changing anything. On PGlite the client and the worker share one
 * database in this process; on PostgreSQL the client has a connection pool of its own.
 */
import { spawn } from "node:child_process"
import { SqlClient } from "@effect/sql/SqlClient"
import { describe, expect, layer } from "@effect/vitest"
import { Context, Deferred, Effect, Exit, Layer, Schema } from "effect"
import { latestVersion, migrate, migrations } from "../../src/internal/store/migrations.js"
import * as Job from "../../src/Job.js"
import { ScheduleNotFound, SchemaNotReady } from "../../src/JobError.js"
import * as Jobs from "../../src/Jobs.js"
import * as JobsClient from "../../src/JobsClient.js"
import * as JobsPg from "../../src/JobsPg.js"
import * as Schedules from "../../src/Schedules.js"
import * as Task from "../../src/Task.js"
import { bundled } from "../support/bundles.js"
import {
  dropSchema,
  type Engine,
  engines,
  freshSchema,
  postgres,
  postgresAvailable,
  postgresUrl,
} from "../support/engines.js"
import { awaitState, eventually, interruptibleJob, NotYet, startJobs } from "../support/jobs.js"

const Echo = Job.make("echo", { args: Schema.Struct({ text: Schema.String }) })

/**
 * Builds a client in the current scope: on the test's own PGlite database, or on PostgreSQL
 * through a pool of its own, as another process would.
 */
const startClient = (engine: Engine, options: JobsClient.Options) =>
  Effect.gen(function* () {
    const sql = yield* SqlClient
    const database =
      engine.name === "postgres"
        ? JobsPg.layer({ url: postgresUrl, maxConnections: 2 }).pipe(Layer.orDie)
        : Layer.succeed(SqlClient, sql)
    const context = yield* Layer.build(JobsClient.layer(options).pipe(Layer.provide(database)))
    return {
      client: Context.get(context, JobsClient.JobsClient),
      schedules: Context.get(context, Schedules.Schedules),
    }
  })

const schemaExists = (schema: string) =>
  Effect.flatMap(SqlClient, (sql) =>
    sql<{
      n: number
    }>`SELECT count(*)::int AS n FROM information_schema.schemata WHERE schema_name = ${schema}`.pipe(
      Effect.map((rows) => rows[0]!.n === 1),
    ),
  )

const appliedVersions = (schema: string) =>
  Effect.flatMap(SqlClient, (sql) =>
    sql.unsafe<{ version: number }>(`SELECT version FROM ${schema}.migrations ORDER BY version`),
  ).pipe(Effect.map((rows) => rows.map((row) => Number(row.version))))

/** A schema as an older version of the library left it: every migration but the last. */
const migrateAllButLast = (schema: string) =>
  Effect.gen(function* () {
    const sql = yield* SqlClient
    yield* sql.unsafe(`CREATE SCHEMA ${schema}`)
    yield* sql.unsafe(
      `CREATE TABLE ${schema}.migrations (version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`,
    )
    for (const migration of migrations.slice(0, -1)) {
      for (const statement of migration.statements(schema)) yield* sql.unsafe(statement)
      yield* sql.unsafe(`INSERT INTO ${schema}.migrations (version, name) VALUES ($1, $2)`, [
        migration.version,
        migration.name,
      ])
    }
  })

for (const engine of engines) {
  describe(`JobsClient on ${engine.name}`, () => {
    layer(engine.layer, { timeout: 60_000, excludeTestServices: true })((it) => {
      const ownSchema = Effect.gen(function* () {
        const sql = yield* SqlClient
        const schema = freshSchema()
        yield* Effect.addFinalizer(() => dropSchema(sql, schema))
        return schema
      })

      it.scoped("never appears among the nodes, never leads, and its inserts run on the workers", () =>
        Effect.gen(function* () {
          const schema = yield* ownSchema
          // Built first, migrating: for a while it is alone with the schema, and nobody leads.
          const { client } = yield* startClient(engine, { schema, migrate: true })
          yield* Effect.sleep("300 millis")
          expect(yield* client.nodes).toEqual([])
          expect(yield* client.leader).toBeNull()

          const ran = yield* Deferred.make<string>()
          // Only a notification wakes this worker: it polls once an hour.
          const worker = yield* startJobs({
            schema,
            pollInterval: "1 hour",
            heartbeatInterval: "1 second",
            handlers: [Echo.handler(({ args }) => Deferred.succeed(ran, args.text))],
          })
          yield* eventually(
            Effect.flatMap(client.leader, (leader) =>
              leader === worker.node ? Effect.void : Effect.fail(new NotYet(`leader is ${leader}`)),
            ),
          )
          const job = yield* client.insert(Echo, { text: "from the client" })
          expect(yield* Deferred.await(ran)).toBe("from the client")
          const done = yield* awaitState(client, job.id, "completed")
          expect(done.attemptedBy).toBe(worker.node)
          expect((yield* client.nodes).map((node) => node.id)).toEqual([worker.node])
          expect(yield* client.leader).toBe(worker.node)
          // Many at once, in one statement, all run by the worker.
          const many = yield* client.insertMany(Echo, [{ text: "a" }, { text: "b" }, { text: "c" }])
          for (const record of many) yield* awaitState(client, record.id, "completed")
        }),
      )

      it.scoped("refuses a missing schema with SchemaNotReady and creates nothing", () =>
        Effect.gen(function* () {
          const schema = yield* ownSchema
          const exit = yield* Effect.exit(startClient(engine, { schema }))
          expect(exit).toEqual(Exit.fail(new SchemaNotReady({ schema, found: 0, expected: latestVersion })))
          if (Exit.isFailure(exit)) {
            expect(String(exit.cause)).toContain("migrate: true")
          }
          expect(yield* schemaExists(schema)).toBe(false)
        }),
      )

      it.scoped("refuses a schema older than it knows and changes nothing", () =>
        Effect.gen(function* () {
          const schema = yield* ownSchema
          yield* migrateAllButLast(schema)
          const before = yield* appliedVersions(schema)
          const error = yield* Effect.flip(startClient(engine, { schema }))
          expect(error).toEqual(
            new SchemaNotReady({ schema, found: latestVersion - 1, expected: latestVersion }),
          )
          expect(error.message).toContain(`at migration ${latestVersion - 1}`)
          expect(yield* appliedVersions(schema)).toEqual(before)
          // Asked to migrate, it brings the schema up and works.
          const { client } = yield* startClient(engine, { schema, migrate: true })
          expect(yield* appliedVersions(schema)).toEqual(migrations.map((m) => m.version))
          const job = yield* client.insert(Echo, { text: "stored" })
          expect((yield* client.get(job.id)).state).toBe("available")
        }),
      )

      it.scoped("refuses a schema newer than it knows, even when asked to migrate", () =>
        Effect.gen(function* () {
          const schema = yield* ownSchema
          const sql = yield* SqlClient
          yield* migrate(sql, schema)
          yield* sql.unsafe(
            `INSERT INTO ${schema}.migrations (version, name) VALUES ($1, 'from_the_future')`,
            [latestVersion + 1],
          )
          for (const migrateToo of [false, true]) {
            const error = yield* Effect.flip(startClient(engine, { schema, migrate: migrateToo }))
            expect(error).toEqual(
              new SchemaNotReady({ schema, found: latestVersion + 1, expected: latestVersion }),
            )
            expect(error.message).toContain("upgrade effect-jobs")
          }
        }),
      )

      it.scoped("refuses options that would break it when built", () =>
        Effect.gen(function* () {
          for (const options of [
            { schema: "Not A Schema" },
            { maxPayloadBytes: 0 },
            { nodeTimeout: "0 millis" },
          ]) {
            const error = yield* Effect.flip(startClient(engine, options as JobsClient.Options))
            expect(error._tag).toBe("InvalidJobOptions")
          }
        }),
      )

      it.scoped("cancels by filter through the database, interrupting the job where it runs", () =>
        Effect.gen(function* () {
          const schema = yield* ownSchema
          const { definition: Long, handler: long, started, interrupted } = yield* interruptibleJob("long")
          yield* startJobs({ schema, queues: { default: 1 }, handlers: [long] })
          const { client } = yield* startClient(engine, { schema })
          const running = yield* client.insert(Long, {}, { meta: { tenant: "acme" } })
          yield* Deferred.await(started)
          const waiting = yield* client.insert(Long, {}, { meta: { tenant: "acme" } })
          yield* client.insert(Long, {}, { meta: { tenant: "other" }, scheduleIn: "1 hour" })
          expect(yield* client.cancelAll({ meta: { tenant: "acme" } })).toBe(2)
          yield* Deferred.await(interrupted)
          const cancelled = yield* client.list({ state: "cancelled" })
          expect(cancelled.map((job) => job.id).sort()).toEqual([running.id, waiting.id].sort())
          expect((yield* client.count({ state: "scheduled" })).count).toBe(1)
        }),
      )

      it.scoped("manages jobs, queues, schedules and tasks on the workers through the database", () =>
        Effect.gen(function* () {
          const schema = yield* ownSchema
          const { definition: Long, handler: long, started, interrupted } = yield* interruptibleJob("long")
          const Fails = Job.make("fails", { args: Schema.Struct({}), maxAttempts: 1 })
          const counter = Task.make({
            id: "counter",
            every: "1 hour",
            state: Schema.Struct({ n: Schema.Number }),
            initial: { n: 0 },
            run: ({ n }) => Effect.succeed({ n: n + 1 }),
          })
          const worker = yield* startJobs({
            schema,
            queues: { default: 2 },
            handlers: [long, Fails.handler(() => Effect.fail("no")), Echo.handler(() => Effect.void)],
            tasks: [counter],
            pollInterval: "1 hour",
          })
          const { client, schedules } = yield* startClient(engine, { schema })

          // A cancel from the client interrupts the job where it runs.
          const job = yield* client.insert(Long, {})
          yield* Deferred.await(started)
          expect((yield* client.cancel(job.id)).state).toBe("cancelled")
          yield* Deferred.await(interrupted)

          // Retry and delete.
          const failed = yield* client.insert(Fails, {})
          yield* awaitState(client, failed.id, "discarded")
          expect((yield* client.retry(failed.id)).state).toBe("available")
          yield* awaitState(client, failed.id, "discarded")
          yield* client.delete(failed.id)
          expect((yield* Effect.flip(client.get(failed.id)))._tag).toBe("JobNotFound")
          expect((yield* client.list({ state: "cancelled" })).map((r) => r.id)).toEqual([job.id])

          // Pause, scale and resume reach the worker; queueInfo shows the stored pause.
          yield* client.pauseQueue("default")
          yield* eventually(
            Effect.flatMap(worker.queues, (queues) =>
              queues[0]!.paused ? Effect.void : Effect.fail(new NotYet()),
            ),
          )
          const info = yield* client.queueInfo("default")
          expect(info).toMatchObject({
            name: "default",
            paused: true,
            runningHere: false,
            limit: 0,
            running: 0,
          })
          expect(info.states.cancelled.count).toBe(1)
          const waiting = yield* client.insert(Echo, { text: "waits" })
          yield* client.scaleQueue("default", 5)
          yield* eventually(
            Effect.flatMap(worker.queues, (queues) =>
              queues[0]!.limit === 5 ? Effect.void : Effect.fail(new NotYet()),
            ),
          )
          expect((yield* client.get(waiting.id)).state).toBe("available")
          yield* client.resumeQueue("default")
          yield* awaitState(client, waiting.id, "completed")
          expect((yield* client.queueInfo("default")).paused).toBe(false)

          // Schedules are stored: the worker's list shows what the client added.
          yield* schedules.add(
            Schedules.cron(
              "nightly",
              "0 3 * * *",
              Echo,
              { text: "night" },
              { priority: 3, meta: { by: "ops" } },
            ),
          )
          expect((yield* worker.schedules.list).map((s) => s.name)).toEqual(["nightly"])
          // Run now from the client: the schedule's job, run by the worker; its ticks stay as they were.
          const manual = yield* schedules.runNow("nightly")
          expect(manual).toMatchObject({
            type: "echo",
            queue: "default",
            priority: 3,
            args: { text: "night" },
            meta: { by: "ops", schedule: "nightly", manual: true },
          })
          yield* awaitState(client, manual.id, "completed")
          expect((yield* schedules.get("nightly")).lastRunAt).toBeNull()
          expect(yield* Effect.flip(schedules.runNow("weekly"))).toEqual(
            new ScheduleNotFound({ schedule: "weekly" }),
          )

          // Task stats and history of every stored task, with the nodes that register it.
          expect((yield* client.taskStats()).map((t) => [t.id, t.nodes])).toEqual([
            ["counter", [worker.node]],
          ])
          yield* worker.tasks.runNow("counter")
          expect((yield* client.taskHistory("counter")).map((r) => r.outcome)).toEqual(["success"])
          // Read through the definition, the state is decoded and typed.
          const typed = yield* client.taskStats(counter)
          expect(typed.state.n).toBe(1)
          expect((yield* client.taskHistory(counter)).map((r) => r.state.n)).toEqual([1])

          // Paused from the client, then a run requested: the worker, woken by the notification
          // (it polls once an hour), runs it, paused or not.
          expect(yield* client.pauseTask("counter")).toMatchObject({ paused: true })
          expect((yield* client.requestTaskRun("counter")).runRequestedAt).not.toBeNull()
          yield* eventually(
            Effect.flatMap(client.taskHistory("counter"), (runs) =>
              runs.length === 2 ? Effect.succeed(runs) : Effect.fail(new NotYet(`${runs.length} runs`)),
            ),
          )
          expect((yield* client.taskHistory(counter))[0]).toMatchObject({
            trigger: "manual",
            node: worker.node,
            state: { n: 2 },
          })
          expect((yield* client.resumeTask("counter")).paused).toBe(false)
          expect((yield* Effect.flip(client.requestTaskRun("nope")))._tag).toBe("TaskNotFound")
        }),
      )

      it.scoped(
        "Jobs.layer provides JobsClient too, so code written against the client runs on a worker",
        () =>
          Effect.gen(function* () {
            const schema = yield* ownSchema
            const enqueue = Effect.flatMap(JobsClient.JobsClient, (client) =>
              client.insert(Echo, { text: "x" }),
            )
            const context = yield* Layer.build(
              Jobs.layer({ schema, handlers: [Echo.handler(() => Effect.void)] }),
            )
            const job = yield* Effect.provide(enqueue, context)
            yield* awaitState(Context.get(context, Jobs.Jobs), job.id, "completed")
          }),
      )
    })
  })
}

// Type-level: a client has no way to run or watch queues here.
export const noWorkerMethods = (client: JobsClient.JobsClient["Type"]) => {
  // @ts-expect-error a client runs no queue
  client.startQueue
  // @ts-expect-error a client runs no queue
  client.drain
  // @ts-expect-error a client sees no local events
  client.events
  // @ts-expect-error pauses from a client are cluster-wide only
  client.pauseQueue("default", { localOnly: true })
}

/** A client in a process of its own; killed with SIGKILL when the scope closes. */
const clientProcess = (schema: string, count: number) =>
  Effect.acquireRelease(
    Effect.async<
      { readonly ids: ReadonlyArray<number>; readonly pid: number; readonly exited: Promise<unknown> },
      Error
    >((resume) => {
      const child = spawn(process.execPath, [bundled("clientProcess"), postgresUrl, schema, String(count)], {
        stdio: ["ignore", "pipe", "pipe"],
      })
      const exited = new Promise((done) => child.once("exit", done))
      let output = ""
      child.stderr.on("data", (chunk: Buffer) => {
        output += chunk.toString()
      })
      child.stdout.on("data", (chunk: Buffer) => {
        const inserted = /inserted (\[.*\])/.exec(chunk.toString())
        if (inserted) resume(Effect.succeed({ ids: JSON.parse(inserted[1]!), pid: child.pid!, exited }))
      })
      exited.then((code) => resume(Effect.fail(new Error(`client exited with ${code}: ${output}`))))
    }),
    ({ pid, exited }) =>
      Effect.promise(() => {
        try {
          process.kill(pid, "SIGKILL")
        } catch {
          // Gone already.
        }
        return exited
      }),
  )

describe.runIf(postgresAvailable)("JobsClient in a process of its own", () => {
  layer(postgres.layer, { timeout: 60_000, excludeTestServices: true })((it) => {
    it.scoped("inserts jobs the workers here run, without ever appearing among the nodes or leading", () =>
      Effect.gen(function* () {
        const sql = yield* SqlClient
        const schema = freshSchema()
        yield* Effect.addFinalizer(() => dropSchema(sql, schema))
        const worker = yield* startJobs({
          schema,
          pollInterval: "1 hour",
          heartbeatInterval: "1 second",
          handlers: [Echo.handler(() => Effect.void)],
        })
        const producer = yield* clientProcess(schema, 20)
        for (const id of producer.ids) {
          const done = yield* awaitState(worker, id, "completed")
          expect(done.attemptedBy).toBe(worker.node)
        }
        // Still running: the client process is nowhere among the nodes, and does not lead.
        const nodes = yield* worker.nodes
        expect(nodes.map((node) => node.id)).toEqual([worker.node])
        expect(nodes.map((node) => node.pid)).not.toContain(producer.pid)
        expect(yield* worker.leader).toBe(worker.node)
        const rows = yield* sql.unsafe<{ n: number }>(`SELECT count(*)::int AS n FROM ${schema}.nodes`)
        expect(rows[0]!.n).toBe(1)
      }),
    )
  })
})
