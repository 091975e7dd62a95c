/**
 * `npm run bench:testing`: how long a test file waits for effect-jobs/testing on PGlite. Each
 * run is a fresh process, as a test file is under vitest, and times from the process's start:
 *
 * - `open`: the first `Testing.pglite()` of the process (the migrated image read from the
 *   system's temporary directory, or built first when there is none);
 * - `clone`: each later `Testing.pglite()`: the database the one before gave back, put back as
 *   the image left it (the first of them opens another, the first database being still held);
 * - `first job`: from the process's start to the outcome of the first job drained through
 *   `Testing.layer`, its module loading included.
 *
 * Runs BENCH_RUNS (default 5) processes with the image cached, then BENCH_COLD_RUNS (2) with
 * none (a temporary directory of their own). With BENCH_BUILT=1 the processes load the built
 * package from dist/ (`npm run build` first) instead of the sources. Ends with one JSON line.
 */
import { execFileSync } from "node:child_process"
import * as NodeFs from "node:fs"
import * as NodeOs from "node:os"
import * as NodePath from "node:path"
import { fileURLToPath } from "node:url"

const clones = 5

/** One process: the figures of one test file's start, as a JSON line on stdout. */
const child = async () => {
  const { Effect, Layer, Schema } = await import("effect")
  // BENCH_BUILT=1: the package as an app installs it, built to JavaScript (`npm run build`).
  const built = process.env.BENCH_BUILT === "1"
  const { Job, Jobs }: typeof import("effect-jobs") = await import(built ? "../dist/index.js" : "effect-jobs")
  const Testing: typeof import("effect-jobs/testing") = await import(
    built ? "../dist/Testing.js" : "effect-jobs/testing"
  )
  const loaded = performance.now()
  const Ping = Job.make("ping", { args: Schema.Struct({ n: Schema.Number }) })
  const ping = Ping.handler(() => Effect.void)
  const program = Effect.gen(function* () {
    const openStart = performance.now()
    const context = yield* Layer.build(Testing.pglite())
    const open = performance.now() - openStart
    const outcome = yield* Effect.gen(function* () {
      const jobs = yield* Jobs.Jobs
      yield* jobs.insert(Ping, { n: 1 })
      return yield* Testing.drain("default")
    }).pipe(Effect.provide(Testing.layer({ handlers: [ping] })), Effect.provide(context))
    if (outcome.success !== 1) return yield* Effect.dieMessage(`the first job did not succeed: ${outcome}`)
    const firstJob = performance.now()
    const cloneTimes: Array<number> = []
    for (let i = 0; i < clones; i++) {
      const start = performance.now()
      yield* Effect.scoped(Layer.build(Testing.pglite()))
      cloneTimes.push(performance.now() - start)
    }
    // A test's own layer on the shared database: the schema emptied, the handlers set up.
    const layerStart = performance.now()
    yield* Effect.scoped(Layer.build(Testing.layer({ handlers: [ping] })).pipe(Effect.provide(context)))
    const perTestLayer = performance.now() - layerStart
    return { loaded, open, firstJob, clones: cloneTimes, perTestLayer }
  }).pipe(Effect.scoped)
  const figures = await Effect.runPromise(program)
  process.stdout.write(`${JSON.stringify(figures)}\n`)
}

interface Figures {
  readonly loaded: number
  readonly open: number
  readonly firstJob: number
  readonly clones: ReadonlyArray<number>
  readonly perTestLayer: number
}

const run = (tmpdir: string | undefined): Figures => {
  const out = execFileSync(
    process.execPath,
    [...process.execArgv, fileURLToPath(import.meta.url), "--child"],
    {
      env: { ...process.env, ...(tmpdir === undefined ? {} : { TMPDIR: tmpdir }) },
      encoding: "utf8",
    },
  )
  return JSON.parse(out.trim().split("\n").at(-1)!) as Figures
}

const summary = (values: ReadonlyArray<number>) => {
  const sorted = [...values].sort((a, b) => a - b)
  const round = (n: number) => Math.round(n)
  return {
    median: round(sorted[Math.floor(sorted.length / 2)]!),
    min: round(sorted[0]!),
    max: round(sorted.at(-1)!),
  }
}

const main = () => {
  const warmRuns = Number(process.env.BENCH_RUNS ?? 5)
  const coldRuns = Number(process.env.BENCH_COLD_RUNS ?? 2)
  // The first run makes sure the image is in the temporary directory.
  run(undefined)
  const warm = Array.from({ length: warmRuns }, () => run(undefined))
  const cold = Array.from({ length: coldRuns }, () => {
    const dir = NodeFs.mkdtempSync(NodePath.join(NodeOs.tmpdir(), "effect-jobs-bench-"))
    try {
      return run(dir)
    } finally {
      NodeFs.rmSync(dir, { recursive: true, force: true })
    }
  })
  const describe = (runs: ReadonlyArray<Figures>) => ({
    runs: runs.length,
    loadedMs: summary(runs.map((r) => r.loaded)),
    openMs: summary(runs.map((r) => r.open)),
    firstJobMs: summary(runs.map((r) => r.firstJob)),
    cloneMs: summary(runs.flatMap((r) => r.clones)),
    perTestLayerMs: summary(runs.map((r) => r.perTestLayer)),
  })
  const result = {
    cores: NodeOs.cpus().length,
    load: NodeOs.loadavg()[0],
    cached: describe(warm),
    ...(coldRuns > 0 ? { uncached: describe(cold) } : {}),
  }
  for (const [name, figures] of Object.entries(result)) {
    if (typeof figures !== "object") continue
    console.log(
      `${name.padEnd(9)} modules ${figures.loadedMs.median} ms, open ${figures.openMs.median} ms (${figures.openMs.min}-${figures.openMs.max}), ` +
        `first job ${figures.firstJobMs.median} ms (${figures.firstJobMs.min}-${figures.firstJobMs.max}) from process start, ` +
        `clone ${figures.cloneMs.median} ms (${figures.cloneMs.min}-${figures.cloneMs.max}), per-test layer ${figures.perTestLayerMs.median} ms`,
    )
  }
  console.log(JSON.stringify(result))
}

if (process.argv.includes("--child")) await child()
else main()
