/**
 * The `effect-jobs` binary as an operator meets it, run as a subprocess (the sources, bundled
 * once per run by test/support/bundles.ts; the packed and built binary is covered by
 * test/package), against one
 * database per test file: each command's output, exit code and errors, and that a refused
 * command changed nothing. `postgres.test.ts` and `pglite.test.ts` run it on each engine.
 */
import { type ChildProcess, spawn } from "node:child_process"
import * as NodePath from "node:path"
import { fileURLToPath } from "node:url"
import { expect, it } from "@effect/vitest"
import { latestVersion } from "../../src/internal/store/migrations.js"
import { bundled } from "../support/bundles.js"

const root = fileURLToPath(new URL("../..", import.meta.url))
const bin = NodePath.join(root, "src", "cli", "bin.ts")

export interface Result {
  readonly code: number | null
  readonly stdout: string
  readonly stderr: string
}

/** The environment of a user who set nothing: no DATABASE_URL, no colour on a pipe anyway. */
const env = () => {
  const { DATABASE_URL: _, ...rest } = process.env
  return rest
}

/**
 * `work --module` loads a TypeScript module that imports the sources, so it runs the sources
 * through tsx, where the module and the binary share one copy of the library; every other
 * command runs the bundle.
 */
const start = (args: ReadonlyArray<string>) =>
  spawn(
    process.execPath,
    args[0] === "work" ? ["--import", "tsx", bin, ...args] : [bundled("cli"), ...args],
    {
      cwd: root,
      env: env(),
      stdio: ["ignore", "pipe", "pipe"],
      // A command that hangs fails its test rather than outliving it.
      timeout: 300_000,
    },
  )

const collect = (child: ChildProcess) =>
  new Promise<Result>((resolve, reject) => {
    let stdout = ""
    let stderr = ""
    child.stdout!.on("data", (chunk) => {
      stdout += chunk
    })
    child.stderr!.on("data", (chunk) => {
      stderr += chunk
    })
    child.once("error", reject)
    child.once("close", (code) => resolve({ code, stdout, stderr }))
  })

/** Runs `effect-jobs args` to its end. */
export const run = (args: ReadonlyArray<string>) => collect(start(args))

/** A refusal: exit 1, one line on standard error naming the trouble, nothing on standard output. */
export const expectRefused = (result: Result, message: string | RegExp) => {
  expect(result.stdout).toBe("")
  expect(result.stderr.trimEnd().split("\n")).toHaveLength(1)
  expect(result.stderr).toMatch(
    typeof message === "string" ? new RegExp(`^effect-jobs: .*${escapeRegExp(message)}`) : message,
  )
  expect(result.code).toBe(1)
}
const escapeRegExp = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")

const ok = (result: Result) => {
  expect(result.stderr).toBe("")
  expect(result.code).toBe(0)
  return result.stdout
}
const json = (result: Result) => JSON.parse(ok(result))

export interface Target {
  readonly engine: "postgres" | "pglite"
  /** The options that name the database. */
  readonly database: ReadonlyArray<string>
}

/** Each test runs several commands, one process each, a few seconds apiece on a busy machine. */
const timeout = 600_000

/** The whole session, in order: each test builds on the jobs the ones before left. */
export const scenario = (target: Target) => {
  const cli = (...args: ReadonlyArray<string>) => run([...args, ...target.database])
  const ids = { welcome: 0, report: 0 }

  it(
    "migrate --dry-run prints the SQL, --target stops early, and no migration is undone",
    async () => {
      const dryRun = await cli("migrate", "--dry-run", "--target", "3")
      if (target.engine === "postgres") {
        const script = ok(dryRun)
        expect(script).toContain("-- migration 3: create_leader_and_queues")
        expect(script).not.toContain("-- migration 4")
        expect(json(await cli("migrate", "status", "--json"))).toMatchObject({
          level: 0,
          pending: latestVersion,
        })
      } else {
        // A dry run opens no new PGlite directory: there is nothing to print the script against.
        expectRefused(dryRun, "no PGlite database in")
      }
      expect(ok(await cli("migrate", "--target", "3"))).toMatch(/^applied 3 migrations \(1, 2, 3\)/)
      expectRefused(await cli("migrate", "--target", "2"), "past the target 2: migrations are never undone")
      expect(ok(await cli("migrate"))).toMatch(new RegExp(`^applied ${latestVersion - 3} migrations`))
      const status = json(await cli("migrate", "status", "--json"))
      expect(status).toMatchObject({ level: latestVersion, library: latestVersion, pending: 0 })
      expect(status.migrations[0]).toMatchObject({ version: 1, name: "create_jobs" })
    },
    timeout,
  )

  it(
    "jobs insert, list and get show what was stored",
    async () => {
      const welcome = json(
        await cli("jobs", "insert", "send-email", "--args", '{"to":"ada@example.com"}', "--json"),
      )
      expect(welcome).toMatchObject({
        type: "send-email",
        queue: "default",
        state: "available",
        args: { to: "ada@example.com" },
      })
      ids.welcome = welcome.id
      const report = ok(
        await cli(
          "jobs",
          "insert",
          "build-report",
          "--queue",
          "reports",
          "--schedule-in",
          "1 hour",
          "--meta",
          '{"by":"ops"}',
        ),
      )
      const inserted = /^inserted job (\d+) \(build-report, queue reports, scheduled\)$/m.exec(report)
      expect(inserted).not.toBeNull()
      ids.report = Number(inserted![1])
      const table = ok(await cli("jobs", "list"))
      expect(table.split("\n")[0]).toMatch(/^ID\s+STATE\s+QUEUE\s+TYPE\s+ATTEMPT\s+SCHEDULED\s+LAST ERROR$/)
      expect(table).toMatch(new RegExp(`^${ids.report}\\s+scheduled\\s+reports\\s+build-report\\s+0/20`, "m"))
      expect(table).toMatch(new RegExp(`^${ids.welcome}\\s+available\\s+default\\s+send-email\\s+0/20`, "m"))
      expect(table).not.toContain("\u001b[")
      const shown = ok(await cli("jobs", "get", String(ids.report)))
      expect(shown).toMatch(/^meta\s+\{"by":"ops"\}$/m)
      expect(shown).toMatch(/^state\s+scheduled$/m)
    },
    timeout,
  )

  it(
    "an unknown id, a malformed filter or bad JSON gives one line, exit 1, and changes nothing",
    async () => {
      expectRefused(await cli("jobs", "get", "999999"), "no job with id 999999")
      expectRefused(await cli("jobs", "retry", String(ids.report), "999999"), "no job with id 999999")
      expectRefused(await cli("jobs", "cancel", "abc"), '"abc" is not a job id')
      expectRefused(await cli("jobs", "list", "--state", "done"), '--state "done" is not a job state')
      expectRefused(await cli("jobs", "insert", "send-email", "--args", "{to:"), "--args is not valid JSON")
      const { jobs, total } = json(await cli("jobs", "list", "--json"))
      expect(total).toEqual({ count: 2, estimated: false })
      expect(jobs.map((job: { id: number; state: string }) => [job.id, job.state])).toEqual([
        [ids.report, "scheduled"],
        [ids.welcome, "available"],
      ])
    },
    timeout,
  )

  it(
    "jobs cancel|retry|delete by filter count the jobs and act only with --yes",
    async () => {
      expectRefused(await cli("jobs", "cancel", "--queue", "reports"), "1 job match. cancel them? Add --yes")
      expect(json(await cli("jobs", "get", String(ids.report), "--json")).state).toBe("scheduled")
      expect(ok(await cli("jobs", "cancel", "--queue", "reports", "--yes"))).toBe(
        "cancelled 1 of the 1 matching job\n",
      )
      expect(ok(await cli("jobs", "retry", String(ids.report)))).toBe(`job ${ids.report} retried\n`)
      expect(ok(await cli("jobs", "delete", String(ids.report)))).toBe(`job ${ids.report} deleted\n`)
      expectRefused(await cli("jobs", "get", String(ids.report)), `no job with id ${ids.report}`)
    },
    timeout,
  )

  it(
    "queues, pause, scale and resume; doctor finds the paused queue's stuck job and exits 2",
    async () => {
      expect(ok(await cli("queues", "pause", "default"))).toContain("queue default paused on every node")
      expect(ok(await cli("queues", "scale", "default", "3"))).toContain("queue default scaled to 3")
      expectRefused(
        await cli("queues", "scale", "default", "many"),
        'concurrency "many" is not a whole number',
      )
      const queues = ok(await cli("queues"))
      // No node runs it yet: its waiting job is orphaned.
      expect(queues).toMatch(/^default \(orphaned\)\s+paused\s+0\s+0\s+1\s+0/m)
      const doctor = await cli("doctor", "--stuck-after", "0")
      expect(doctor.code).toBe(2)
      expect(doctor.stdout).toMatch(
        new RegExp(`^schema\\s+ok\\s+schema \\S+ is at migration ${latestVersion}`, "m"),
      )
      expect(doctor.stdout).toMatch(
        /^stuck jobs\s+problem\s+queue default: 1 available job due for over 0 s .*: the queue is paused$/m,
      )
      expect(doctor.stdout).toMatch(
        /^orphaned queues\s+problem\s+queue default holds 1 available job and no live node runs it$/m,
      )
      expect(doctor.stdout).toMatch(
        /^job types\s+problem\s+1 waiting send-email job \(queue default\): no live node has a handler/m,
      )
      expect(doctor.stdout).toContain("3 problems need a person")
      expect(ok(await cli("queues", "resume", "default"))).toContain("queue default resumed on every node")
    },
    timeout,
  )

  it(
    "work runs the module's handlers, schedules and tasks, and stops cleanly on SIGTERM",
    async () => {
      const worker = start(["work", "--module", "test/cli/worker.ts", ...target.database])
      const done = collect(worker)
      try {
        let output = ""
        worker.stdout!.on("data", (chunk) => {
          output += chunk
        })
        /** Waits until the worker has printed every one of `texts`, in whatever order. */
        const printed = (...texts: ReadonlyArray<string>) =>
          new Promise<void>((resolve, reject) => {
            const check = () => {
              if (texts.every((text) => output.includes(text))) resolve()
            }
            worker.stdout!.on("data", check)
            worker.once("close", () => reject(new Error(`the worker ended early:\n${output}`)))
            check()
          })
        // The job may run before the start-up line is printed: wait for both.
        await printed(`sent to ada@example.com (job ${ids.welcome})`, "SIGTERM or Ctrl-C stops it")
        expect(output).toMatch(/^node \S+ runs default \(3\) with handlers for send-email/m)
        if (target.engine === "postgres") {
          expect(ok(await cli("nodes"))).toMatch(/\(leader\)\s+\S+\s+\d+\s+default/)
          // A schedule run now from the command line: the worker runs its job at once.
          const ran = /^schedule nightly-digest inserted job (\d+) \(send-email, queue default\)$/m.exec(
            ok(await cli("schedules", "run", "nightly-digest")),
          )
          expect(ran).not.toBeNull()
          await printed(`sent to ops@example.com (job ${ran![1]})`)
        } else {
          // The worker holds the PGlite directory: another opener is refused, naming it.
          expectRefused(await cli("jobs", "list"), `is in use by process ${worker.pid}`)
        }
      } finally {
        // Also when an assertion fails, so that the next tests find the database free.
        worker.kill("SIGTERM")
      }
      const result = await done
      expect(result.code).toBe(0)
      expect(result.stdout).toContain("stopped: running jobs finished or were handed back")
      expect(json(await cli("jobs", "get", String(ids.welcome), "--json")).state).toBe("completed")
    },
    timeout,
  )

  it(
    "dashboard serves the pages on the port it names, and stops cleanly on SIGTERM",
    async () => {
      const port = 40_000 + Math.floor(Math.random() * 20_000)
      const server = start(["dashboard", "--port", String(port), ...target.database])
      const done = collect(server)
      try {
        await new Promise<void>((resolve, reject) => {
          let output = ""
          server.stdout!.on("data", (chunk) => {
            output += chunk
            if (output.includes(`dashboard on http://127.0.0.1:${port}/`)) resolve()
          })
          server.once("close", () => reject(new Error(`the dashboard ended early:\n${output}`)))
        })
        const overview = await fetch(`http://127.0.0.1:${port}/`)
        expect(overview.status).toBe(200)
        expect(await overview.text()).toContain("<title>Overview")
        // The job page shows the job the worker ran.
        const job = await fetch(`http://127.0.0.1:${port}/jobs/${ids.welcome}`)
        expect(job.status).toBe(200)
        expect(await job.text()).toContain("send-email")
      } finally {
        server.kill("SIGTERM")
      }
      expect((await done).code).toBe(0)
    },
    timeout,
  )

  it(
    "schedules and tasks stored by the worker are listed, paused, resumed and run; stats shows them",
    async () => {
      expect(ok(await cli("schedules", "list"))).toMatch(
        /^nightly-digest\s+0 3 \* \* \*\s+send-email\s+default\s+no/m,
      )
      expect(json(await cli("schedules", "pause", "nightly-digest", "--json"))).toMatchObject({
        paused: true,
        nextRunAt: null,
      })
      expect(ok(await cli("schedules", "resume", "nightly-digest"))).toMatch(
        /^schedule nightly-digest resumed; next run \d{4}-/,
      )
      expectRefused(await cli("schedules", "run", "nightly"), 'no cron schedule is named "nightly"')
      expect(json(await cli("tasks", "pause", "count-runs", "--json"))).toMatchObject({
        id: "count-runs",
        paused: true,
        nodes: [],
      })
      // No worker runs now: the request waits for a node that registers the task.
      expect(ok(await cli("tasks", "run", "count-runs"))).toBe(
        "run of task count-runs requested; no live node has it registered: it runs when one registers it\n",
      )
      expect(ok(await cli("tasks", "list"))).toMatch(
        /^count-runs\s+count-runs\s+waiting, paused, run requested\s+once\s+1\s+0/m,
      )
      expect(json(await cli("tasks", "history", "count-runs", "--json"))).toMatchObject([
        { taskId: "count-runs", outcome: "success", state: 1 },
      ])
      const stats = json(await cli("stats", "--json"))
      // On PostgreSQL the worker also ran the schedule's job run now from the command line.
      expect(stats.counts).toContainEqual({
        queue: "default",
        state: "completed",
        count: target.engine === "postgres" ? 2 : 1,
        estimated: false,
      })
      expect(stats.tasks).toEqual([{ id: "count-runs", status: "waiting", paused: true, runningOn: null }])
    },
    timeout,
  )

  it("doctor finds nothing wrong once the queue is served, and exits 0", async () => {
    const doctor = await cli("doctor")
    expect(doctor.code).toBe(0)
    expect(doctor.stdout).toMatch(/^stuck jobs\s+ok/m)
    expect(doctor.stdout).toMatch(/no problem found/)
  })
}
