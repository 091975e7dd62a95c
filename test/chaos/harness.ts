/**
 * Real worker processes for the crash suite, and the checks that prove what happened.
 */
import { type ChildProcess, execFile, execFileSync, spawn } from "node:child_process"
import { existsSync, mkdtempSync, readdirSync, rmSync } from "node:fs"
import { type AddressInfo, createServer } from "node:net"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { promisify } from "node:util"
import type { SqlClient } from "@effect/sql/SqlClient"
import { Effect, type Scope } from "effect"
import { bundled } from "../support/bundles.js"
import { postgresUrl } from "../support/engines.js"

export interface WorkerConfig {
  readonly schema: string
  /** The database the worker uses. Defaults to the shared PostgreSQL of the tests. */
  readonly url?: string
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
          bundled("chaosWorker"),
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

/**
 * Restarts the machine's PostgreSQL at once, dropping every connection and in-flight
 * transaction, everyone's. The suite crashes a server of its own instead (`privatePostgres`).
 */
export const restartPostgres = Effect.sync(() => {
  const version = execFileSync("ls", ["/etc/postgresql"]).toString().trim().split("\n")[0]!
  execFileSync("pg_ctlcluster", ["--skip-systemctl-redirect", version, "main", "restart", "-m", "immediate"])
})

const run = promisify(execFile)

/** Where PostgreSQL's server programs are (initdb, pg_ctl), when this machine has them. */
export const postgresBin: string | undefined = (() => {
  const candidates: Array<string> = []
  try {
    candidates.push(
      execFileSync("pg_config", ["--bindir"], { stdio: ["ignore", "pipe", "ignore"] })
        .toString()
        .trim(),
    )
  } catch {}
  if (existsSync("/usr/lib/postgresql"))
    for (const version of readdirSync("/usr/lib/postgresql").sort().reverse())
      candidates.push(join("/usr/lib/postgresql", version, "bin"))
  return candidates.find((dir) => existsSync(join(dir, "initdb")) && existsSync(join(dir, "pg_ctl")))
})()

export interface PrivatePostgres {
  readonly url: string
  /** Stops the server in immediate mode (a crash: no checkpoint, connections cut) and starts it again. */
  readonly restart: Effect.Effect<void>
}

/**
 * A PostgreSQL server of the test's own, in a temporary directory on a free port, so that
 * crashing it disturbs nobody else using the machine's server. Run as the `postgres` user
 * when the test runs as root (initdb refuses root). Stopped and removed when the scope closes.
 */
export const privatePostgres = (bin: string): Effect.Effect<PrivatePostgres, Error, Scope.Scope> => {
  const asOwner = (program: string, args: ReadonlyArray<string>) =>
    process.getuid?.() === 0
      ? run("runuser", ["-u", "postgres", "--", join(bin, program), ...args])
      : run(join(bin, program), [...args])
  return Effect.acquireRelease(
    Effect.tryPromise({
      try: async () => {
        const dir = mkdtempSync(join(tmpdir(), "effect-jobs-pg-"))
        if (process.getuid?.() === 0) await run("chown", ["postgres", dir])
        const port = await freePort()
        await asOwner("initdb", ["-D", dir, "-U", "postgres", "--auth=trust", "--no-sync"])
        // The OS survives an immediate stop, so fsync buys nothing here but load on a shared disk.
        const options = `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=100`
        const ctl = (...args: Array<string>) =>
          asOwner("pg_ctl", ["-D", dir, "-l", join(dir, "log"), "-w", ...args])
        await ctl("-o", options, "start")
        return { dir, port, ctl }
      },
      catch: (cause) => new Error(`could not start a PostgreSQL server of the test's own: ${cause}`),
    }),
    ({ dir, ctl }) =>
      Effect.promise(async () => {
        await ctl("-m", "immediate", "stop").catch(() => {})
        rmSync(dir, { recursive: true, force: true })
      }),
  ).pipe(
    Effect.map(({ port, ctl }) => ({
      url: `postgres://postgres@127.0.0.1:${port}/postgres`,
      restart: Effect.promise(() => ctl("-m", "immediate", "restart")),
    })),
  )
}

const freePort = () =>
  new Promise<number>((resolve, reject) => {
    const server = createServer()
    server.once("error", reject)
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as AddressInfo
      server.close(() => resolve(port))
    })
  })

/**
 * The ledger: one row per event, in the order they were written. Handlers write `start` as
 * their first statement and `end` as their last; a trigger on the jobs table writes `outcome`
 * whenever a write lands on a claimed or finished job (the outcome writes, a rescue, a
 * release), with the state it left and the node that held the job. The runtime cannot skip
 * or tidy any of it. Without the jobs table (not migrated yet) only the table is made.
 */
export const createLedger = (sql: SqlClient, schema: string) =>
  sql.unsafe(
    `CREATE TABLE ${schema}.ledger (seq bigserial PRIMARY KEY, job_id bigint NOT NULL, attempt integer NOT NULL,
       node text NOT NULL, pid integer NOT NULL, event text NOT NULL DEFAULT 'start', state text, tag text,
       at timestamptz NOT NULL DEFAULT clock_timestamp());
     CREATE FUNCTION ${schema}.ledger_outcome() RETURNS trigger LANGUAGE plpgsql AS $$
       BEGIN
         INSERT INTO ${schema}.ledger (job_id, attempt, node, pid, event, state, tag)
         VALUES (OLD.id, OLD.attempt, COALESCE(OLD.attempted_by, ''), 0, 'outcome', NEW.state,
           CASE WHEN jsonb_array_length(NEW.errors) > jsonb_array_length(OLD.errors) THEN NEW.errors -> -1 ->> 'tag' END);
         RETURN NULL;
       END $$;
     DO $$ BEGIN
       IF to_regclass('${schema}.jobs') IS NOT NULL THEN
         CREATE TRIGGER ledger_outcome AFTER UPDATE ON ${schema}.jobs FOR EACH ROW
           WHEN (OLD.state IN ('executing', 'completed', 'discarded', 'cancelled'))
           EXECUTE FUNCTION ${schema}.ledger_outcome();
       END IF;
     END $$`,
  )

export interface LedgerEntry {
  /** The entry's place in the ledger. */
  readonly seq: number
  readonly jobId: number
  readonly event: "start" | "end" | "outcome"
  readonly node: string
  /** The process that wrote a `start` or `end` (0 for an outcome). */
  readonly pid: number
  readonly attempt: number
  /** For an outcome: the state the write left the job in, and the tag of the error it added. */
  readonly state: string | null
  readonly tag: string | null
  /** Milliseconds since the epoch, by the database's clock. */
  readonly at: number
}

/** The whole ledger, in the order it was written. */
export const readLedger = (sql: SqlClient, schema: string) =>
  Effect.map(
    sql.unsafe<{
      seq: string
      job_id: string
      event: LedgerEntry["event"]
      node: string
      pid: number
      attempt: number
      state: string | null
      tag: string | null
      at: number
    }>(
      `SELECT seq, job_id, event, node, pid, attempt, state, tag, extract(epoch FROM at)::float8 * 1000 AS at
       FROM ${schema}.ledger ORDER BY seq`,
    ),
    (rows): ReadonlyArray<LedgerEntry> =>
      rows.map((r) => ({
        seq: Number(r.seq),
        jobId: Number(r.job_id),
        event: r.event,
        node: r.node,
        pid: Number(r.pid),
        attempt: Number(r.attempt),
        state: r.state,
        tag: r.tag,
        at: Number(r.at),
      })),
  )

/** One run of a handler as the ledger tells it: its start, its end if it returned, and what closed it. */
export interface Run {
  readonly jobId: number
  readonly node: string
  readonly start: LedgerEntry
  readonly end: LedgerEntry | undefined
  /** The first outcome written for the job after this run's start while this run's node held it. */
  readonly closedBy: LedgerEntry | undefined
}

/** The ledger grouped by job: its runs in order, and every outcome written. */
export const runsByJob = (entries: ReadonlyArray<LedgerEntry>) => {
  const jobs = new Map<number, { runs: Array<Run>; outcomes: Array<LedgerEntry> }>()
  for (const entry of entries) {
    let job = jobs.get(entry.jobId)
    if (job === undefined) {
      job = { runs: [], outcomes: [] }
      jobs.set(entry.jobId, job)
    }
    if (entry.event === "start") {
      job.runs.push({
        jobId: entry.jobId,
        node: entry.node,
        start: entry,
        end: undefined,
        closedBy: undefined,
      })
      continue
    }
    if (entry.event === "outcome") job.outcomes.push(entry)
    // An entry belongs to the latest run on its node that has none of its kind yet.
    const runs = job.runs
    for (let i = runs.length - 1; i >= 0; i--) {
      const run = runs[i]!
      if (run.node !== entry.node) continue
      if (entry.event === "end" && run.end === undefined) runs[i] = { ...run, end: entry }
      else if (entry.event === "outcome" && run.closedBy === undefined) runs[i] = { ...run, closedBy: entry }
      else continue
      break
    }
  }
  return jobs
}

/**
 * What the ledger shows that the promises forbid, one sentence each, so a failure reads as a
 * list. A job has at most one completion written; nothing runs after its job's completion
 * was written; a completion is written only after the handler of the job's latest run
 * returned (a late write from a lost run lands before it). Every run but a job's last was
 * closed by a failure or a release, or, if it was rescued or never closed, `interrupted`
 * says its process or its database was taken away while it was open.
 */
export const ledgerViolations = (
  entries: ReadonlyArray<LedgerEntry>,
  interrupted: (run: Run) => boolean = () => false,
): ReadonlyArray<string> => {
  const found: Array<string> = []
  for (const [id, { runs, outcomes }] of runsByJob(entries)) {
    const completions = outcomes.filter((o) => o.state === "completed")
    if (completions.length > 1) found.push(`job ${id}: ${completions.length} completions written`)
    const completed = completions[0]
    if (completed !== undefined) {
      for (const run of runs) {
        if (run.start.seq > completed.seq)
          found.push(`job ${id}: ran again on ${run.node} after it was completed`)
      }
      const last = runs.at(-1)
      if (last === undefined || last.end === undefined || last.end.seq > completed.seq)
        found.push(`job ${id}: a completion was written before the handler of its latest run returned`)
    }
    for (const run of runs.slice(0, -1)) {
      const closed = run.closedBy
      if (closed !== undefined && closed.state !== "completed" && closed.tag !== "Rescued") continue
      if (closed?.state !== "completed" && interrupted(run)) continue
      found.push(
        closed === undefined
          ? `job ${id}: ran again after a run on ${run.node} that was never closed, and nothing took it away`
          : closed.state === "completed"
            ? `job ${id}: ran again after a run on ${run.node} whose completion was written`
            : `job ${id}: ran again after a run on ${run.node} was rescued, though nothing took it away`,
      )
    }
  }
  return found
}

export interface Outcome {
  readonly states: Record<string, number>
  /** Jobs with more than one run in the ledger, and the nodes their runs were on, in order. */
  readonly repeated: ReadonlyArray<{ readonly id: number; readonly nodes: ReadonlyArray<string> }>
  /** Jobs with at least one run in the ledger. */
  readonly ledgerJobs: number
}

/** What the database says happened. */
export const outcome = (sql: SqlClient, schema: string) =>
  Effect.gen(function* () {
    const states = yield* sql.unsafe<{ state: string; count: number }>(
      `SELECT state, count(*)::integer AS count FROM ${schema}.jobs GROUP BY state`,
    )
    const repeated = yield* sql.unsafe<{ job_id: string; nodes: Array<string> }>(
      `SELECT job_id, array_agg(node ORDER BY seq) AS nodes FROM ${schema}.ledger WHERE event = 'start'
       GROUP BY job_id HAVING count(*) > 1 ORDER BY job_id`,
    )
    const [ledger] = yield* sql.unsafe<{ count: number }>(
      `SELECT count(DISTINCT job_id)::integer AS count FROM ${schema}.ledger WHERE event = 'start'`,
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
