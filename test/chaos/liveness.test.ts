/**
 * The crash suite's liveness scenarios: real worker processes on PostgreSQL whose handlers
 * starve the app's pool, or whose clock is a minute off. Every run records its start and
 * end in the `runs` table through a connection of its own, so the checks see each run
 * whatever the runtime believed. How to watch each scenario fail: docs/reliability.md.
 */
import { spawn } from "node:child_process"
import { SqlClient } from "@effect/sql/SqlClient"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Layer } from "effect"
import * as JobsPg from "../../src/JobsPg.js"
import { bundled } from "../support/bundles.js"
import { dropSchema, freshSchema, postgresAvailable, postgresUrl } from "../support/engines.js"
import { startJobs } from "../support/jobs.js"
import { kill, type Worker } from "./harness.js"
import { createRuns, Hold } from "./liveness-job.js"

const Db = JobsPg.layer({ url: postgresUrl, maxConnections: 8 })

if (!postgresAvailable) {
  console.warn(`crash suite (liveness): SKIPPED, PostgreSQL at ${postgresUrl} does not answer`)
}

/** Starts a liveness worker and waits until its queue runs; SIGKILLed when the scope closes. */
const startLivenessWorker = (
  config: { readonly schema: string; readonly concurrency: number; readonly maxConnections: number },
  clockSkewMillis = 0,
) =>
  Effect.acquireRelease(
    Effect.async<Worker, Error>((resume) => {
      const child = spawn(
        process.execPath,
        [bundled("livenessWorker"), JSON.stringify({ url: postgresUrl, ...config })],
        {
          stdio: ["ignore", "pipe", "pipe"],
          env: { ...process.env, JOBS_CLOCK_SKEW_MS: String(clockSkewMillis) },
        },
      )
      const exited = new Promise<number | string | null>((done) =>
        child.once("exit", (code, signal) => done(code ?? signal)),
      )
      let output = ""
      child.stderr.on("data", (chunk: Buffer) => {
        output += chunk.toString()
      })
      child.stdout.on("data", (chunk: Buffer) => {
        output += chunk.toString()
        const ready = /ready (\S+)/.exec(chunk.toString())
        if (ready) resume(Effect.succeed({ node: ready[1]!, child, exited }))
      })
      exited.then((code) =>
        resume(
          Effect.fail(new Error(`worker exited with ${code} before it was ready: ${output.slice(-2000)}`)),
        ),
      )
    }),
    (worker) => kill(worker, "SIGKILL"),
  )

/**
 * A schema with the `runs` table, and a healthy node in this process (correct clock, a pool
 * with room, no queue of its own) that inserts the jobs and, started first, leads: its
 * rescuer is the one that would take a live node's jobs.
 */
const setup = Effect.gen(function* () {
  const sql = yield* SqlClient
  const schema = freshSchema()
  yield* Effect.addFinalizer(() => dropSchema(sql, schema))
  const jobs = yield* startJobs({
    schema,
    queues: {},
    handlers: [],
    heartbeatInterval: "500 millis",
    nodeTimeout: "3 seconds",
  })
  yield* sql.unsafe(createRuns(schema))
  return { sql, schema, jobs }
})

interface Runs {
  readonly completed: number
  /** Jobs started more than once, with the nodes of their runs in order. */
  readonly repeated: ReadonlyArray<{ readonly id: number; readonly nodes: ReadonlyArray<string> }>
  readonly started: number
  readonly ended: number
}

const runs = (sql: SqlClient, schema: string) =>
  Effect.gen(function* () {
    const [counts] = yield* sql.unsafe<{ completed: number; started: number; ended: number }>(
      `SELECT (SELECT count(*) FROM ${schema}.jobs WHERE state = 'completed')::integer AS completed,
         (SELECT count(DISTINCT job_id) FROM ${schema}.runs WHERE phase = 'start')::integer AS started,
         (SELECT count(*) FROM ${schema}.runs WHERE phase = 'end')::integer AS ended`,
    )
    const repeated = yield* sql.unsafe<{ job_id: string; nodes: Array<string> }>(
      `SELECT job_id, array_agg(node ORDER BY at) AS nodes FROM ${schema}.runs WHERE phase = 'start'
       GROUP BY job_id HAVING count(*) > 1 ORDER BY job_id`,
    )
    return {
      completed: Number(counts!.completed),
      started: Number(counts!.started),
      ended: Number(counts!.ended),
      repeated: repeated.map((r) => ({ id: Number(r.job_id), nodes: r.nodes })),
    } satisfies Runs
  })

const awaitRuns = (sql: SqlClient, schema: string, done: (runs: Runs) => boolean, timeoutMillis: number) =>
  Effect.gen(function* () {
    const deadline = Date.now() + timeoutMillis
    while (true) {
      const current = yield* runs(sql, schema)
      if (done(current) || Date.now() > deadline) return current
      yield* Effect.sleep("250 millis")
    }
  })

describe.runIf(postgresAvailable)("crash suite: liveness", () => {
  it.live(
    "pool starvation: handlers holding every connection of the pool never get a job run twice",
    () =>
      Effect.gen(function* () {
        const { sql, schema, jobs } = yield* setup
        // Two processes, each with 12 handlers on a pool of 3 holding a connection for 2 s:
        // a heartbeat waiting for a slot would wait about 6 s, twice nodeTimeout.
        yield* Effect.all(
          Array.from({ length: 2 }, () =>
            startLivenessWorker({ schema, concurrency: 12, maxConnections: 3 }),
          ),
          { concurrency: "unbounded" },
        )
        const total = 24
        yield* jobs.insertMany(
          Hold,
          Array.from({ length: total }, (_, n) => ({ n, millis: 2000 })),
        )
        const result = yield* awaitRuns(sql, schema, (r) => r.completed === total, 90_000)
        expect(result.repeated).toEqual([])
        expect(result).toMatchObject({ completed: total, started: total, ended: total })
      }).pipe(Effect.scoped, Effect.provide(Layer.fresh(Db))),
    120_000,
  )

  it.live(
    "clock skew: a worker 60 s ahead neither leads nor rescues a healthy node's jobs",
    () =>
      Effect.gen(function* () {
        const { sql, schema, jobs } = yield* setup
        // The skewed process runs no queue: a job of the healthy one's that it rescued would
        // run there again.
        yield* Effect.all(
          [
            startLivenessWorker({ schema, concurrency: 4, maxConnections: 6 }),
            startLivenessWorker({ schema, concurrency: 0, maxConnections: 6 }, 60_000),
          ],
          { concurrency: "unbounded" },
        )
        const total = 4
        // Each runs for two node timeouts, through several rescue rounds.
        yield* jobs.insertMany(
          Hold,
          Array.from({ length: total }, (_, n) => ({ n, millis: 6000 })),
        )
        const result = yield* awaitRuns(sql, schema, (r) => r.completed === total, 60_000)
        expect(result.repeated).toEqual([])
        expect(result).toMatchObject({ completed: total, started: total, ended: total })
        expect(yield* jobs.leader).toBe(jobs.node)
      }).pipe(Effect.scoped, Effect.provide(Layer.fresh(Db))),
    120_000,
  )
})
