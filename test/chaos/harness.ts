/**
 * Real worker processes for the crash suite, and the checks that prove what happened.
 */
import { type ChildProcess, execFileSync, spawn } from "node:child_process"
import { join } from "node:path"
import type { SqlClient } from "@effect/sql/SqlClient"
import { Effect, type Scope } from "effect"
import { postgresUrl } from "../support/engines.js"

export interface WorkerConfig {
  readonly schema: string
  readonly concurrency?: number
  readonly nodeTimeout?: `${number} ${"millis" | "seconds"}`
  readonly heartbeatInterval?: `${number} ${"millis" | "seconds"}`
  readonly shutdownTimeout?: `${number} ${"millis" | "seconds"}`
  readonly maxRescues?: number
}

export interface Worker {
  readonly node: string
  readonly child: ChildProcess
  /** Resolves with the exit code (or signal) once the process is gone. */
  readonly exited: Promise<number | string | null>
}

/** The crash suite's size: "short" inside `npm test`, "full" for `npm run test:chaos`. */
export const scale = process.env.CHAOS_SCALE === "full" ? "full" : "short"
export const sized = <A>(short: A, full: A): A => (scale === "full" ? full : short)

/**
 * Starts a worker and waits until its queues run. Killed (SIGKILL) when the scope closes. A
 * worker that exits with `expectedExit` (a poison job's code) may do so before it says it is
 * ready, since its queues claim at once: it is then answered as it is, already dead.
 */
export const startWorker = (
  config: WorkerConfig,
  expectedExit?: number,
): Effect.Effect<Worker, Error, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.async<Worker, Error>((resume) => {
      const child = spawn(
        process.execPath,
        [
          "--import",
          "tsx",
          join(import.meta.dirname, "worker.ts"),
          JSON.stringify({
            url: postgresUrl,
            concurrency: 16,
            nodeTimeout: "3 seconds",
            heartbeatInterval: "500 millis",
            shutdownTimeout: "10 seconds",
            maxRescues: 3,
            ...config,
          }),
        ],
        { stdio: ["ignore", "pipe", "pipe"] },
      )
      const exited = new Promise<number | string | null>((done) =>
        child.once("exit", (code, signal) => done(code ?? signal)),
      )
      let output = ""
      child.stderr.on("data", (chunk: Buffer) => {
        output += chunk.toString()
      })
      child.stdout.on("data", (chunk: Buffer) => {
        const ready = /ready (\S+)/.exec(chunk.toString())
        if (ready) resume(Effect.succeed({ node: ready[1]!, child, exited }))
      })
      exited.then((code) =>
        resume(
          code === expectedExit
            ? Effect.succeed({ node: "(exited before ready)", child, exited })
            : Effect.fail(
                new Error(`worker exited with ${code} before it was ready: ${output.slice(-2000)}`),
              ),
        ),
      )
    }),
    (worker) => kill(worker, "SIGKILL"),
  )

/** Sends a signal and, for SIGKILL and SIGTERM, waits until the process is gone. */
export const kill = (worker: Worker, signal: NodeJS.Signals) =>
  Effect.promise(async () => {
    if (worker.child.exitCode !== null || worker.child.signalCode !== null) return
    worker.child.kill(signal)
    if (signal === "SIGKILL" || signal === "SIGTERM") await worker.exited
  })

export const isAlive = (worker: Worker) => worker.child.exitCode === null && worker.child.signalCode === null

/** Restarts PostgreSQL at once, dropping every connection and in-flight transaction. */
export const restartPostgres = Effect.sync(() => {
  const version = execFileSync("ls", ["/etc/postgresql"]).toString().trim().split("\n")[0]!
  execFileSync("pg_ctlcluster", ["--skip-systemctl-redirect", version, "main", "restart", "-m", "immediate"])
})

export const createLedger = (sql: SqlClient, schema: string) =>
  sql.unsafe(
    `CREATE TABLE ${schema}.ledger (job_id bigint NOT NULL, attempt integer NOT NULL, node text NOT NULL,
       pid integer NOT NULL, at timestamptz NOT NULL DEFAULT clock_timestamp())`,
  )

export interface Outcome {
  readonly states: Record<string, number>
  /** Jobs with more than one ledger row, and the nodes their runs were on, in order. */
  readonly repeated: ReadonlyArray<{ readonly id: number; readonly nodes: ReadonlyArray<string> }>
  readonly ledgerJobs: number
}

/** What the database says happened. */
export const outcome = (sql: SqlClient, schema: string) =>
  Effect.gen(function* () {
    const states = yield* sql.unsafe<{ state: string; count: number }>(
      `SELECT state, count(*)::integer AS count FROM ${schema}.jobs GROUP BY state`,
    )
    const repeated = yield* sql.unsafe<{ job_id: string; nodes: Array<string> }>(
      `SELECT job_id, array_agg(node ORDER BY at) AS nodes FROM ${schema}.ledger
       GROUP BY job_id HAVING count(*) > 1 ORDER BY job_id`,
    )
    const [ledger] = yield* sql.unsafe<{ count: number }>(
      `SELECT count(DISTINCT job_id)::integer AS count FROM ${schema}.ledger`,
    )
    return {
      states: Object.fromEntries(states.map((s) => [s.state, Number(s.count)])),
      repeated: repeated.map((r) => ({ id: Number(r.job_id), nodes: r.nodes })),
      ledgerJobs: Number(ledger!.count),
    } satisfies Outcome
  })

/** Waits (live clock) until `done` holds for the current outcome. */
export const awaitOutcome = (
  sql: SqlClient,
  schema: string,
  done: (outcome: Outcome) => boolean,
  timeoutMillis: number,
) =>
  Effect.gen(function* () {
    const deadline = Date.now() + timeoutMillis
    while (true) {
      const current = yield* outcome(sql, schema).pipe(Effect.retry({ times: 20 }))
      if (done(current) || Date.now() > deadline) return current
      yield* Effect.sleep("250 millis")
    }
  })
