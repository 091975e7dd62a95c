/**
 * Plans and runs the comparison: one child process per system, workload and setting, one
 * after another; writes the results to bench/results/ and, after a run covering every
 * system and workload, the section of docs/benchmarks.md, its chart and
 * docs/benchmarks-compare.json.
 */
import { spawnSync } from "node:child_process"
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs"
import os from "node:os"
import { join } from "node:path"
import { now, round, w1Figure } from "./common.js"
import { repoRoot, runInChild } from "./proc.js"
import { writeDocs } from "./report.js"
import { type SystemInfo, systems } from "./systems/system.js"
import { batchSize, type Spec } from "./workloads.js"

export const workloads = ["W1", "W2", "W3", "W4", "W5"] as const
export type Workload = (typeof workloads)[number]

export interface Scale {
  readonly name: "full" | "quick"
  readonly jobs: number
  readonly latencySamples: number
  readonly latencyWarmup: number
  readonly steadySeconds: number
  readonly rssEverySeconds: number
  readonly scaleProcesses: ReadonlyArray<number>
  readonly maxPoolPerProcess: number
  /** Runs of W1's fastest concurrency (the sweep's included) and of each W5 process count. */
  readonly repeats: number
}

const scales: Record<Scale["name"], Scale> = {
  full: {
    name: "full",
    jobs: 200_000,
    latencySamples: 1000,
    latencyWarmup: 20,
    steadySeconds: 300,
    rssEverySeconds: 10,
    scaleProcesses: [1, 4],
    maxPoolPerProcess: 10,
    repeats: 3,
  },
  quick: {
    name: "quick",
    jobs: 20_000,
    latencySamples: 200,
    latencyWarmup: 10,
    steadySeconds: 30,
    rssEverySeconds: 10,
    scaleProcesses: [1, 4],
    maxPoolPerProcess: 10,
    repeats: 1,
  },
}

export interface Run {
  readonly workload: Workload
  readonly system: string
  readonly ok: boolean
  readonly wall_s: number
  readonly result?: Record<string, any>
  readonly error?: string
  readonly skipped?: string
  /** A W1 run repeating the fastest concurrency of the sweep. */
  readonly repeat?: boolean
  /** For effect-jobs, which runs from this repository's source: the commit, and whether src/ had changes. */
  readonly source?: string
}

export interface Results {
  readonly title: string
  readonly date: string
  readonly scale: Scale
  readonly complete: boolean
  readonly command: string
  readonly machine: Record<string, unknown>
  readonly server: Record<string, unknown>
  readonly versions: Record<string, string>
  readonly bullmq_postgres_backend: boolean
  readonly systems: ReadonlyArray<Omit<SystemInfo, "load">>
  readonly workloads: Record<Workload, string>
  best_concurrency: Record<string, { concurrency: number; jobs_per_s: number; from: string }>
  readonly runs: Array<Run>
  readonly notes: Array<string>
  wall_s: number
}

export const workloadText: Record<Workload, string> = {
  W1: "burn-down: the jobs are inserted first (bulk, untimed), then timed from the worker's start until the store shows every job completed; a sweep of concurrency values, and the fastest repeated",
  W2: "latency: sequential single inserts on an idle queue, made by a separate producer process (for PGlite, the worker's own), each timed from the insert call to its handler starting, after a few warm-up jobs; the two processes' clock offset is measured first and taken out",
  W3: `bulk insert in batches of ${batchSize.toLocaleString("en-US")} with the system's bulk API, nothing consuming`,
  W4: "steady state: a fixed offered rate of half the system's best W1 figure, inserted every 10 ms by a separate producer process (for PGlite, the worker's own); insert-to-start latency corrected for the clock offset, the worker's RSS every 10 s, and at the end the dead tuples of the system's tables (Redis: used_memory)",
  W5: "scale-out: the jobs inserted first, then 1 or 4 worker processes started together on the same database, timed until the store shows every job completed; each count repeated, alternating",
}

interface Options {
  readonly scale: Scale
  readonly systems: ReadonlyArray<SystemInfo>
  readonly workloads: ReadonlyArray<Workload>
  readonly docs: boolean
  readonly report?: string
}

const usage = `npm run bench:compare -- [--quick] [--systems a,b] [--workloads W1,W2] [--no-docs] [--report FILE]

  --quick        20,000 jobs, 200 latency samples, W4 for 30 s, no repeats (also BENCH_QUICK=1);
                 BENCH_JOBS and BENCH_STEADY_SECONDS override the job count and W4's length,
                 BENCH_REPEATS the runs of W1's fastest concurrency and of each W5 count (3);
                 BENCH_NODE_ARGS adds Node flags to every child (--trace-gc-nvp, say)
  --systems      any of: ${systems.map((s) => s.id).join(", ")} (a prefix selects several)
  --workloads    any of: ${workloads.join(", ")}
  --no-docs      do not write the docs even after a complete run
  --report FILE  rewrite the docs section and chart from a results file, running nothing;
                 FILE,LATER,... folds in each LATER: the systems FILE lacks, and every
                 workload LATER completed, in place of FILE's runs of it`

const parse = (argv: ReadonlyArray<string>): Options => {
  let quick = ["1", "true", "yes"].includes(process.env.BENCH_QUICK ?? "")
  let selected: ReadonlyArray<SystemInfo> = systems
  let chosen: ReadonlyArray<Workload> = workloads
  let docs = true
  let report: string | undefined
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!
    const [flag, inline] = arg.includes("=") ? arg.split("=", 2) : [arg, undefined]
    const value = () => inline ?? argv[++i] ?? ""
    if (flag === "--quick") quick = true
    else if (flag === "--full") quick = false
    else if (flag === "--no-docs") docs = false
    else if (flag === "--report") report = value()
    else if (flag === "--systems") {
      const wanted = value().split(",").filter(Boolean)
      // An exact id selects that system; anything else selects every id it begins.
      const matches = (w: string) =>
        systems.some((s) => s.id === w)
          ? systems.filter((s) => s.id === w)
          : systems.filter((s) => s.id.startsWith(w))
      selected = systems.filter((s) => wanted.some((w) => matches(w).includes(s)))
      const unknown = wanted.filter((w) => matches(w).length === 0)
      if (unknown.length > 0 || selected.length === 0)
        throw new Error(`unknown system ${unknown.join(", ")}\n${usage}`)
    } else if (flag === "--workloads") {
      const wanted = value()
        .split(",")
        .filter(Boolean)
        .map((w) => w.toUpperCase())
      const unknown = wanted.filter((w) => !(workloads as ReadonlyArray<string>).includes(w))
      if (unknown.length > 0) throw new Error(`unknown workload ${unknown.join(", ")}\n${usage}`)
      chosen = workloads.filter((w) => wanted.includes(w))
    } else if (flag === "--help" || flag === "-h") {
      console.log(usage)
      process.exit(0)
    } else throw new Error(`unknown option ${arg}\n${usage}`)
  }
  const base = quick ? scales.quick : scales.full
  // For development: shorter or smaller runs (recorded in the results with the scale).
  const scale: Scale = {
    ...base,
    jobs: Number(process.env.BENCH_JOBS ?? base.jobs),
    steadySeconds: Number(process.env.BENCH_STEADY_SECONDS ?? base.steadySeconds),
    repeats: Math.max(1, Number(process.env.BENCH_REPEATS ?? base.repeats)),
  }
  return { scale, systems: selected, workloads: chosen, docs, report }
}

const resultsDir = join(repoRoot, "bench", "results")

type Best = Results["best_concurrency"][string]

/**
 * The best W1 figure for a system from an earlier results file of the same scale, for a W4 run
 * without W1: this machine's own results first, newest first, then the published pass (all a
 * fresh clone has).
 */
const previousBest = (system: string, scale: Scale["name"]) => {
  const local = existsSync(resultsDir)
    ? readdirSync(resultsDir)
        .filter((f) => f.startsWith("compare-") && f.endsWith(".json"))
        .sort()
        .reverse()
        .map((f) => join("bench", "results", f))
    : []
  const files = [...local, join("docs", "benchmarks-compare.json")]
  const found: Array<{ readonly best: Best; readonly file: string; readonly complete: boolean }> = []
  for (const file of files) {
    try {
      const old = JSON.parse(readFileSync(join(repoRoot, file), "utf8")) as Results
      const best = old.scale?.name === scale ? old.best_concurrency?.[system] : undefined
      if (best) found.push({ best, file, complete: old.complete === true })
    } catch {
      // A missing or unreadable file is skipped.
    }
  }
  // The newest complete pass first: a partial probe run since (other settings, a quick
  // experiment) must not set the rate a later W4 offers.
  const chosen = found.find((f) => f.complete) ?? found[0]
  return chosen && { ...chosen.best, from: chosen.file }
}

/** The development overrides of the scale that are set. */
const overrides = () =>
  ["BENCH_JOBS", "BENCH_STEADY_SECONDS", "BENCH_REPEATS", "BENCH_NODE_ARGS"].filter(
    (name) => process.env[name],
  )

/** The command that reproduces this run. */
const commandLine = (argv: ReadonlyArray<string>, scale: Scale) => {
  const env = overrides()
    .map((name) => `${name}=${process.env[name]} `)
    .join("")
  const args = [...argv]
  if (scale.name === "quick" && !args.includes("--quick")) args.unshift("--quick")
  return `${env}npm run bench:compare${args.length > 0 ? ` -- ${args.join(" ")}` : ""}`
}

/** What the figures cannot show by themselves: choices of versions and settings, and what was not measured. */
const standardNotes = (
  info: { server: Record<string, any>; versions: Record<string, string>; bullmq_postgres_backend: boolean },
  selected: ReadonlyArray<SystemInfo>,
): Array<string> => {
  const v = info.versions
  const notes = [
    `pg-boss ${v["pg-boss"]}: the newest release whose package.json engines accepts Node 20 (pg-boss 11 and later require Node 22 or later).`,
    `graphile-worker ${v["graphile-worker"]}: the newest release whose engines accepts Node 20 (0.18.0 requires Node 22.18 or later).`,
    info.bullmq_postgres_backend
      ? `BullMQ ${v.bullmq} has a PostgreSQL backend (createPostgresBackend, with LISTEN/NOTIFY wake-ups); it is measured as bullmq-pg, on the same database as the other PostgreSQL systems, beside BullMQ on Redis.`
      : `BullMQ ${v.bullmq} has no PostgreSQL backend: only BullMQ on Redis is measured.`,
    "Every system's per-job logging is off (graphile-worker's NO_LOG_SUCCESS, as in its own performance test; warnings and errors only for the others).",
    "W1 and W5 insert the jobs before the clock starts, then run VACUUM ANALYZE on the system's tables, so that every system starts with planner statistics for a full table.",
    "effect-jobs on PGlite: W5 does not apply (an in-memory PGlite database lives inside one process), and in W2 and W4 the inserts come from the worker process itself (in W4 its RSS includes the producer).",
    "W2 and W4 insert from a separate process, so no system gains from sharing a process with its inserter; effect-jobs, which wakes a queue of its own process directly on an insert made through it, is measured on that path by `npm run bench` instead.",
    "pg-boss has no wake-up on insert: each of its 4 work() loops fetches a batch, waits out the rest of its polling interval (0.5 s, the smallest it accepts), and fetches again. Its latency is set by that interval, and its throughput by loops × batch size per interval.",
    "W5 caps every worker process's connection pool at 10, so that 4 processes stay well inside the server's max_connections (graphile-worker warns that a pool smaller than its concurrency may not be optimal).",
    "The timed span of W1 and W5 includes each system's start call (`start_ms` in the W1 results): resuming a paused queue for effect-jobs, `run()` for graphile-worker (it connects its pool then), `work()` for pg-boss, `Worker.run()` for BullMQ.",
  ]
  const autovacuum = info.server?.postgres?.settings?.autovacuum
  if (autovacuum === "off") {
    notes.push(
      "autovacuum is off on this PostgreSQL server, so W4's dead tuples show what each system leaves behind with nothing reclaiming it (a system's own cleanup, such as deleting or pruning finished jobs, still counts).",
    )
  }
  if (selected.some((s) => s.id.startsWith("graphile")))
    notes.push(
      "graphile-worker deletes a job when it completes; the others keep completed jobs (their default), except effect-jobs (PostgreSQL, completed: 0), which is effect-jobs with `prune: { completed: 0 }`: a completion deletes its job, as graphile-worker's does.",
    )
  return notes
}

/** The commit effect-jobs runs from, marked when src/ differs from it (the source may change between runs). */
const sourceState = (): string => {
  const git = (...args: Array<string>) =>
    spawnSync("git", args, { cwd: repoRoot, encoding: "utf8" }).stdout?.trim() ?? ""
  const commit = git("rev-parse", "--short", "HEAD") || "unknown"
  return git("status", "--porcelain", "--", "src") ? `${commit} + uncommitted changes in src/` : commit
}

/**
 * A pass with what a later run measured folded in: the systems the pass lacks, and for its
 * own systems each workload the later run completed, whose runs take the place of the pass's
 * (a workload rerun under other conditions, or one that failed in the pass). A note says what
 * came from where, and which server settings differed.
 */
export const merge = (pass: Results, later: Results): Results => {
  const added = later.systems.filter((s) => !pass.systems.some((p) => p.id === s.id))
  const ids = new Set(added.map((s) => s.id))
  const key = (run: Run) => `${run.system}\u0000${run.workload}`
  const completed = new Set(later.runs.filter((r) => r.ok).map(key))
  const replaced = new Set(later.runs.filter((r) => !ids.has(r.system) && completed.has(key(r))).map(key))
  if (added.length === 0 && replaced.size === 0) return pass
  const order = (id: string) => systems.findIndex((s) => s.id === id)
  const label = (id: string) => later.systems.find((s) => s.id === id)?.label ?? id
  const taken = later.runs.filter((r) => ids.has(r.system) || replaced.has(key(r)))
  const sources = [...new Set(taken.flatMap((r) => (r.source ? [r.source] : [])))]
  const byWorkload = new Map<string, Set<string>>()
  for (const run of taken) {
    if (ids.has(run.system)) continue
    byWorkload.set(run.workload, (byWorkload.get(run.workload) ?? new Set()).add(label(run.system)))
  }
  const what = [
    ...added.map((s) => s.label),
    ...[...byWorkload].map(([workload, labels]) => `${workload} of ${[...labels].join(", ")}`),
  ]
  const before = (pass.server as any)?.postgres?.settings ?? {}
  const after = (later.server as any)?.postgres?.settings ?? {}
  const differing = Object.keys(after)
    .filter((name) => before[name] !== after[name])
    .map((name) => `${name} ${after[name]} (the pass: ${before[name] ?? "not recorded"})`)
  return {
    ...pass,
    systems: [...pass.systems, ...added].sort((a, b) => order(a.id) - order(b.id)),
    best_concurrency: {
      ...pass.best_concurrency,
      ...Object.fromEntries(Object.entries(later.best_concurrency).filter(([id]) => ids.has(id))),
    },
    runs: [...pass.runs.filter((r) => !replaced.has(key(r))), ...taken],
    notes: [
      // The pass's note on autovacuum describes the pass's server alone.
      ...pass.notes.filter((n) => !(n.startsWith("autovacuum is") && before.autovacuum !== after.autovacuum)),
      `${what.join("; ")}: measured after this pass, on the same machine, by \`${later.command}\` (started ${later.date}${sources.length > 0 ? `, from ${sources.join(", ")}` : ""})${differing.length > 0 ? `, with the server's ${differing.join(", ")}` : ""}.`,
    ],
  }
}

const fmt = (n: number) => Math.round(n).toLocaleString("en-US")

/** One line per run, as it finishes. */
const summaryLine = (run: Run): string => {
  if (run.skipped) return `skipped: ${run.skipped}`
  if (!run.ok) return `FAILED: ${run.error}`
  const r = run.result!
  switch (run.workload) {
    case "W1":
      return `c=${r.concurrency}: ${fmt(r.jobs_per_s)} jobs/s (${r.seconds} s, worker CPU ${r.worker_cpu_pct} %)`
    case "W2":
      return `p50 ${r.p50_ms} ms, p99 ${r.p99_ms} ms, max ${r.max_ms} ms`
    case "W3":
      return `${fmt(r.inserts_per_s)} inserts/s (${r.seconds} s)`
    case "W4":
      return `offered ${fmt(r.offered_rate)}/s, achieved ${fmt(r.producer.achieved_rate)}/s; p50 ${r.latency.p50_ms} ms, p99 ${r.latency.p99_ms} ms; peak RSS ${r.peak_rss_mb} MB${r.kept_up === false ? `; not drained, ${fmt(r.backlog_at_end)} jobs left` : ""}`
    case "W5":
      return `${r.processes} process(es): ${fmt(r.jobs_per_s)} jobs/s (${r.seconds} s)`
  }
}

export const main = async (argv: ReadonlyArray<string>): Promise<void> => {
  const options = parse(argv)
  if (options.report) {
    const files = options.report.split(",").filter(Boolean)
    const [first, ...rest] = files.map((file) => JSON.parse(readFileSync(file, "utf8")) as Results)
    writeDocs(rest.reduce(merge, first!))
    console.log(`docs rewritten from ${files.join(", ")}`)
    return
  }
  const { scale } = options
  const started = now()
  const date = new Date()
  const stamp = date.toISOString().replace(/[:.]/g, "-").slice(0, 19)
  mkdirSync(resultsDir, { recursive: true })
  const file = join(resultsDir, `compare-${stamp}-${scale.name}.json`)

  console.log(
    `bench:compare (${scale.name} scale): ${options.systems.map((s) => s.id).join(", ")}; ${options.workloads.join(", ")}`,
  )
  const info = await runInChild<{
    server: Record<string, any>
    versions: Record<string, string>
    bullmq_postgres_backend: boolean
  }>({ kind: "info" }, 120_000)

  // Docs come only from a run of everything at a standard scale.
  const complete =
    options.systems.length === systems.length &&
    options.workloads.length === workloads.length &&
    overrides().length === 0
  const results: Results = {
    title: "effect-jobs compared with other Node job systems",
    date: date.toISOString(),
    scale,
    complete,
    command: commandLine(argv, scale),
    machine: {
      cpus: os.cpus().length,
      cpu_model: os.cpus()[0]?.model,
      memory_gib: round(os.totalmem() / 2 ** 30, 1),
      platform: `${os.type()} ${os.release()} ${os.arch()}`,
      node: process.version,
      load_average_at_start: os.loadavg().map((l) => round(l, 2)),
    },
    server: info.server,
    versions: { node: process.version, ...info.versions },
    bullmq_postgres_backend: info.bullmq_postgres_backend,
    systems: options.systems.map(({ load: _, ...rest }) => rest),
    workloads: workloadText,
    best_concurrency: {},
    runs: [],
    notes: standardNotes(info, options.systems),
    wall_s: 0,
  }
  const save = () => {
    results.wall_s = round((now() - started) / 1000, 1)
    writeFileSync(file, `${JSON.stringify(results, null, 2)}\n`)
  }

  const minutes = (n: number) => n * 60_000
  const plan: Array<{
    workload: Workload
    system: SystemInfo
    spec: () => Spec | string
    timeoutMs: number
    repeat?: boolean
  }> = []
  for (const workload of options.workloads) {
    for (const system of options.systems) {
      const best = () => results.best_concurrency[system.id] ?? previousBest(system.id, scale.name)
      const bestOrMiddle = () => best()?.concurrency ?? system.sweep[Math.floor(system.sweep.length / 2)]!
      switch (workload) {
        case "W1":
          for (const concurrency of system.sweep) {
            plan.push({
              workload,
              system,
              spec: () => ({ kind: "W1", system: system.id, concurrency, jobs: scale.jobs }),
              timeoutMs: minutes(scale.name === "full" ? 20 : 5),
            })
          }
          // The fastest concurrency again, so that its figure is a median and not one lucky run.
          for (let i = 1; i < scale.repeats; i++) {
            plan.push({
              workload,
              system,
              spec: () => {
                const b = results.best_concurrency[system.id]
                if (!b) return "no W1 run of the sweep succeeded"
                return { kind: "W1", system: system.id, concurrency: b.concurrency, jobs: scale.jobs }
              },
              timeoutMs: minutes(scale.name === "full" ? 20 : 5),
              repeat: true,
            })
          }
          break
        case "W2":
          plan.push({
            workload,
            system,
            spec: () => ({
              kind: "W2",
              system: system.id,
              concurrency: bestOrMiddle(),
              samples: scale.latencySamples,
              warmup: scale.latencyWarmup,
            }),
            timeoutMs: minutes(scale.name === "full" ? 20 : 5),
          })
          break
        case "W3":
          plan.push({
            workload,
            system,
            spec: () => ({ kind: "W3", system: system.id, jobs: scale.jobs }),
            timeoutMs: minutes(scale.name === "full" ? 20 : 5),
          })
          break
        case "W4":
          plan.push({
            workload,
            system,
            spec: () => {
              const b = best()
              if (!b) return "no W1 figure for this system (run W1 first, in this run or an earlier one)"
              return {
                kind: "W4",
                system: system.id,
                concurrency: b.concurrency,
                rate: Math.max(1, Math.round(b.jobs_per_s / 2)),
                seconds: scale.steadySeconds,
                rssEverySeconds: scale.rssEverySeconds,
              }
            },
            timeoutMs: scale.steadySeconds * 1500 + minutes(5),
          })
          break
        case "W5":
          // The process counts alternate, so that a slow spell of the machine does not fall on one.
          for (const processes of Array.from({ length: scale.repeats }, () => scale.scaleProcesses).flat()) {
            plan.push({
              workload,
              system,
              spec: () =>
                system.multiProcess
                  ? {
                      kind: "W5",
                      system: system.id,
                      concurrency: bestOrMiddle(),
                      jobs: scale.jobs,
                      processes,
                      maxPool: scale.maxPoolPerProcess,
                    }
                  : "one process only: an in-memory PGlite database lives inside the process that opened it",
              timeoutMs: minutes(scale.name === "full" ? 20 : 5),
            })
          }
          break
      }
    }
  }

  for (const [index, step] of plan.entries()) {
    const spec = step.spec()
    const prefix = `[${index + 1}/${plan.length}] ${step.workload} ${step.system.id}`
    const runStarted = now()
    let run: Run
    const repeat = step.repeat ? { repeat: true } : {}
    if (typeof spec === "string") {
      run = {
        workload: step.workload,
        system: step.system.id,
        ok: false,
        wall_s: 0,
        skipped: spec,
        ...repeat,
      }
    } else {
      if (step.workload === "W4" && "rate" in spec) {
        const b = results.best_concurrency[step.system.id] ?? previousBest(step.system.id, scale.name)
        console.log(
          `${prefix}: ${spec.seconds} s at ${fmt(spec.rate)} jobs/s (concurrency ${b?.concurrency}, from ${b?.from})`,
        )
      }
      const source = step.system.id.startsWith("effect-jobs") ? { source: sourceState() } : {}
      try {
        const result = await runInChild<Record<string, any>>(spec, step.timeoutMs)
        run = {
          workload: step.workload,
          system: step.system.id,
          ok: true,
          wall_s: 0,
          result,
          ...repeat,
          ...source,
        }
      } catch (error) {
        run = {
          workload: step.workload,
          system: step.system.id,
          ok: false,
          wall_s: 0,
          error: error instanceof Error ? error.message : String(error),
          ...repeat,
          ...source,
        }
      }
    }
    run = { ...run, wall_s: round((now() - runStarted) / 1000, 1) }
    results.runs.push(run)
    if (run.workload === "W1" && run.ok) {
      // W4 offers half of this figure: the median at the fastest concurrency.
      const figure = w1Figure(
        results.runs
          .filter((r) => r.workload === "W1" && r.system === run.system && r.ok)
          .map((r) => r.result as { concurrency: number; jobs_per_s: number }),
      )!
      results.best_concurrency[run.system] = {
        concurrency: figure.concurrency,
        jobs_per_s: Math.round(figure.median),
        from: "this run",
      }
    }
    console.log(`${prefix}: ${summaryLine(run)}`)
    save()
  }

  await runInChild({ kind: "cleanup" }, 120_000).catch((error: unknown) => {
    results.notes.push(`the final cleanup failed: ${error instanceof Error ? error.message : String(error)}`)
  })
  save()
  console.log(`results: ${file} (${Math.round(results.wall_s / 60)} min)`)
  if (complete && options.docs) {
    writeDocs(results)
    console.log(
      "docs/benchmarks.md (compare section), docs/images/compare.svg and docs/benchmarks-compare.json written",
    )
  } else if (!complete) {
    console.log(
      "a partial run (filtered systems or workloads, or a scale override): the docs are left as they are",
    )
  }
}
