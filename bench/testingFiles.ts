/**
 * `npm run bench:testing-files`: how long each test file of a vitest run waits for its first
 * job on effect-jobs/testing, as an app sees it. The package is built and copied into an app
 * of generated test files under bench/results/testing-files, each file opening
 * `Testing.pglite()` for its tests, as the guide shows. The run is made twice:
 *
 * - `isolate: false`: the files of a worker share its process, and so its idle databases;
 * - `isolate: true` (vitest's default): each file is a process of its own.
 *
 * A file's wait is from its start (vitest running the setup file, before the file's imports)
 * to the outcome of its first job. BENCH_FILES (default 12) files, BENCH_WORKERS (default 2)
 * workers. Ends with one JSON line.
 */
import { execFileSync, spawnSync } from "node:child_process"
import * as NodeFs from "node:fs"
import * as NodeOs from "node:os"
import * as NodePath from "node:path"
import { fileURLToPath } from "node:url"

const root = fileURLToPath(new URL("..", import.meta.url))
const app = NodePath.join(root, "bench", "results", "testing-files")
const files = Number(process.env.BENCH_FILES ?? 12)
const workers = Number(process.env.BENCH_WORKERS ?? 2)

const setupFile = `
(globalThis as any).__fileStart = performance.now()
`

const testFile = (n: number) => `
import { appendFileSync } from "node:fs"
import { expect, layer } from "@effect/vitest"
import { Effect, Schema } from "effect"
import { Job, Jobs } from "effect-jobs"
import * as Testing from "effect-jobs/testing"

const imported = performance.now()
const Ping = Job.make("ping", { args: Schema.Struct({ n: Schema.Number }) })
const ping = Ping.handler(() => Effect.void)
const insertAndDrain = (n: number) =>
  Effect.gen(function* () {
    yield* Effect.flatMap(Jobs.Jobs, (jobs) => jobs.insert(Ping, { n }))
    return yield* Testing.drain("default")
  }).pipe(Effect.provide(Testing.layer({ handlers: [ping] })))

layer(Testing.pglite())((it) => {
  it.effect("the first job", () =>
    Effect.gen(function* () {
      const ran = yield* insertAndDrain(1)
      expect(ran.success).toBe(1)
      const now = performance.now()
      const fileStart = (globalThis as any).__fileStart as number
      appendFileSync(
        process.env.BENCH_OUT!,
        JSON.stringify({ file: ${n}, pid: process.pid, fileStart, imports: imported - fileStart, firstJob: now - fileStart }) + "\\n",
      )
    }),
  )
  for (let i = 2; i <= 5; i++) {
    it.effect(\`job \${i}\`, () => Effect.map(insertAndDrain(i), (ran) => expect(ran.success).toBe(1)))
  }
})
`

const config = (isolate: boolean) => `
import { defineConfig } from "vitest/config"
export default defineConfig({
  test: {
    include: ["*.test.ts"],
    setupFiles: ["./setup.ts"],
    isolate: ${isolate},
    maxWorkers: ${workers},
    minWorkers: ${workers},
    hookTimeout: 120_000,
  },
})
`

/** The app: the built package in its node_modules, as npm installs it; the rest resolves from the repository's. */
const makeApp = () => {
  NodeFs.rmSync(app, { recursive: true, force: true })
  const installed = NodePath.join(app, "node_modules", "effect-jobs")
  NodeFs.mkdirSync(installed, { recursive: true })
  NodeFs.cpSync(NodePath.join(root, "dist"), NodePath.join(installed, "dist"), { recursive: true })
  NodeFs.copyFileSync(NodePath.join(root, "package.json"), NodePath.join(installed, "package.json"))
  NodeFs.writeFileSync(NodePath.join(app, "setup.ts"), setupFile)
  for (let n = 1; n <= files; n++) {
    NodeFs.writeFileSync(NodePath.join(app, `f${String(n).padStart(2, "0")}.test.ts`), testFile(n))
  }
}

interface Line {
  readonly file: number
  readonly pid: number
  readonly fileStart: number
  readonly imports: number
  readonly firstJob: number
}

const summary = (values: ReadonlyArray<number>) => {
  const sorted = [...values].sort((a, b) => a - b)
  if (sorted.length === 0) return undefined
  return {
    median: Math.round(sorted[Math.floor(sorted.length / 2)]!),
    min: Math.round(sorted[0]!),
    max: Math.round(sorted.at(-1)!),
  }
}

const runVitest = (isolate: boolean) => {
  NodeFs.writeFileSync(NodePath.join(app, "vitest.config.ts"), config(isolate))
  const out = NodePath.join(app, `figures-${isolate}.jsonl`)
  NodeFs.rmSync(out, { force: true })
  const start = performance.now()
  const result = spawnSync(NodePath.join(root, "node_modules", ".bin", "vitest"), ["run"], {
    cwd: app,
    env: { ...process.env, BENCH_OUT: out },
    encoding: "utf8",
  })
  const wallMs = Math.round(performance.now() - start)
  if (result.status !== 0) throw new Error(`vitest failed:\n${result.stdout}\n${result.stderr}`)
  const lines = NodeFs.readFileSync(out, "utf8")
    .trim()
    .split("\n")
    .map((line) => JSON.parse(line) as Line)
  // A process's first file opens PGlite; the files after it take the database it gave back.
  const firstOfProcess = new Set<Line>()
  for (const pid of new Set(lines.map((line) => line.pid))) {
    const ofProcess = lines.filter((line) => line.pid === pid).sort((a, b) => a.fileStart - b.fileStart)
    firstOfProcess.add(ofProcess[0]!)
  }
  return {
    isolate,
    files: lines.length,
    processes: firstOfProcess.size,
    wallMs,
    firstFileOfProcessMs: summary([...firstOfProcess].map((line) => line.firstJob)),
    firstFileImportsMs: summary([...firstOfProcess].map((line) => line.imports)),
    laterFilesMs: summary(lines.filter((line) => !firstOfProcess.has(line)).map((line) => line.firstJob)),
  }
}

const main = () => {
  execFileSync("npm", ["run", "build"], { cwd: root, stdio: "ignore" })
  makeApp()
  // A first run leaves the migrated image in the temporary directory, as any earlier test run would.
  runVitest(true)
  const runs = [runVitest(false), runVitest(true)]
  for (const run of runs) {
    const first = run.firstFileOfProcessMs
    const later = run.laterFilesMs
    console.log(
      `isolate: ${String(run.isolate).padEnd(5)} ${run.files} files in ${run.processes} processes, run ${run.wallMs} ms; ` +
        `first job of a process's first file ${first?.median} ms (${first?.min}-${first?.max}; imports ${run.firstFileImportsMs?.median} ms)` +
        (later === undefined ? "" : `, of each later file ${later.median} ms (${later.min}-${later.max})`),
    )
  }
  console.log(JSON.stringify({ cores: NodeOs.cpus().length, load: NodeOs.loadavg()[0], workers, runs }))
}

main()
