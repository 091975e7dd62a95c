/**
 * Turns a results file into the generated section of docs/benchmarks.md (between
 * `<!-- compare:start -->` and `<!-- compare:end -->`), the chart docs/images/compare.svg
 * (W1 and W2, drawn here as plain SVG), and docs/benchmarks-compare.json.
 */
import { mkdirSync, readFileSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { type Repeated, repeated, w1Figure } from "./common.js"
import type { Results, Run, Workload } from "./orchestrate.js"
import { repoRoot } from "./proc.js"

const startMarker = "<!-- compare:start -->"
const endMarker = "<!-- compare:end -->"
const reference = "effect-jobs-pg"

const fmt = (n: number | undefined): string =>
  n === undefined || !Number.isFinite(n) ? "–" : Math.round(n).toLocaleString("en-US")
// Results recorded before the histogram reached past 162 s report anything longer as its top.
const oldHistogramTopMs = 162409.04
const ms = (n: number | undefined): string =>
  n === undefined || !Number.isFinite(n)
    ? "–"
    : n === oldHistogramTopMs
      ? `≥ ${fmt(n)}`
      : n < 10
        ? n.toFixed(2)
        : n < 100
          ? n.toFixed(1)
          : fmt(n)
const ratio = (a: number | undefined, b: number | undefined): string => {
  if (a === undefined || b === undefined || !Number.isFinite(a) || !Number.isFinite(b) || b === 0) return "–"
  const r = a / b
  return `${r < 0.1 ? r.toPrecision(2) : r.toFixed(2)}×`
}

const labelOf = (results: Results, id: string) => results.systems.find((s) => s.id === id)?.label ?? id
const runsOf = (results: Results, workload: Workload, system: string) =>
  results.runs.filter((r) => r.workload === workload && r.system === system)
const okOf = (results: Results, workload: Workload, system: string) =>
  runsOf(results, workload, system).filter((r) => r.ok)
const firstOk = (results: Results, workload: Workload, system: string) =>
  okOf(results, workload, system)[0]?.result

/** A system's W1 figure: the median of its runs at the concurrency of its fastest run. */
const bestW1 = (results: Results, system: string) =>
  w1Figure(
    okOf(results, "W1", system).map(
      (r) => r.result as { concurrency: number; jobs_per_s: number; [key: string]: any },
    ),
  )

/** A median, with the range of its runs when there were several. */
const spread = (figure: Repeated<unknown>) =>
  figure.count > 1 ? `${figure.count} runs: ${fmt(figure.min)}–${fmt(figure.max)}` : ""

const failure = (run: Run | undefined) =>
  run === undefined ? "not run" : run.skipped ? "n/a" : run.ok ? undefined : "failed"

const table = (header: ReadonlyArray<string>, rows: ReadonlyArray<ReadonlyArray<string>>, align: string) =>
  [
    `| ${header.join(" | ")} |`,
    `|${align
      .split("")
      .map((a) => (a === "r" ? " ---: " : " --- "))
      .join("|")}|`,
  ]
    .concat(rows.map((r) => `| ${r.join(" | ")} |`))
    .join("\n")

/** Results from before repeats were made have one run of everything. */
const repeats = (results: Results) => results.scale.repeats ?? 1

const scaleLabel = (results: Results) => {
  const date = results.date.slice(0, 10)
  return results.scale.name === "quick"
    ? `quick scale (${fmt(results.scale.jobs)} jobs, W4 for ${results.scale.steadySeconds} s), ${date}`
    : `full scale (${fmt(results.scale.jobs)} jobs, W4 for ${results.scale.steadySeconds / 60} min), ${date}`
}

const w1Table = (results: Results) => {
  const ref = bestW1(results, reference)?.median
  return table(
    [
      "system",
      "jobs/s at each concurrency",
      repeats(results) > 1 ? "best jobs/s (median)" : "best jobs/s",
      "worker CPU at best",
      "effect-jobs ÷ this",
    ],
    results.systems.map((s) => {
      const runs = runsOf(results, "W1", s.id)
      const sweep = runs
        .filter((r) => !r.repeat)
        .map((r) => (r.ok ? `${r.result!.concurrency}: ${fmt(r.result!.jobs_per_s)}` : `failed`))
        .join(" · ")
      const best = bestW1(results, s.id)
      return [
        s.label,
        sweep || "not run",
        best
          ? `**${fmt(best.median)}** (c = ${best.concurrency}${best.count > 1 ? `; ${spread(best)}` : ""})`
          : (failure(runs[0]) ?? "–"),
        best ? `${best.run.worker_cpu_pct} %` : "–",
        s.id === reference ? "–" : ratio(ref, best?.median),
      ]
    }),
    "lrrrr",
  )
}

const w2Table = (results: Results) => {
  const ref = firstOk(results, "W2", reference)
  return table(
    ["system", "concurrency", "p50 ms", "p99 ms", "max ms", "effect-jobs ÷ this (p50)", "(p99)"],
    results.systems.map((s) => {
      const run = runsOf(results, "W2", s.id)[0]
      const r = run?.ok ? run.result : undefined
      if (!r) return [s.label, failure(run) ?? "–", "–", "–", "–", "–", "–"]
      return [
        s.label,
        String(r.concurrency),
        ms(r.p50_ms),
        ms(r.p99_ms),
        ms(r.max_ms),
        s.id === reference ? "–" : ratio(ref?.p50_ms, r.p50_ms),
        s.id === reference ? "–" : ratio(ref?.p99_ms, r.p99_ms),
      ]
    }),
    "lrrrrrr",
  )
}

const w3Table = (results: Results) => {
  const ref = firstOk(results, "W3", reference)?.inserts_per_s
  return table(
    ["system", "bulk API", "inserts/s", "effect-jobs ÷ this"],
    results.systems.map((s) => {
      const run = runsOf(results, "W3", s.id)[0]
      const api = s.id.startsWith("effect-jobs")
        ? "`insertMany`"
        : s.id.startsWith("graphile")
          ? "`addJobs`"
          : s.id === "pg-boss"
            ? "`insert`"
            : "`addBulk`"
      const r = run?.ok ? run.result : undefined
      return [
        s.label,
        api,
        r ? fmt(r.inserts_per_s) : (failure(run) ?? "–"),
        s.id === reference || !r ? "–" : ratio(ref, r.inserts_per_s),
      ]
    }),
    "llrr",
  )
}

const storeFigure = (store: Record<string, any> | undefined) => {
  if (!store) return "–"
  if (store.used_memory_human !== undefined) return `Redis used_memory ${store.used_memory_human}`
  return `${fmt(store.jobs_table_n_dead_tup)} (all tables ${fmt(store.n_dead_tup)})`
}

const w4Table = (results: Results) => {
  const ref = firstOk(results, "W4", reference)
  return table(
    [
      "system",
      "concurrency",
      "offered / achieved jobs/s",
      "p50 ms",
      "p99 ms",
      "max ms",
      "p50 ms, first → last 10 s",
      "drain s",
      "RSS MB start → end (peak)",
      "JS heap in use MB, peak",
      "dead tuples: jobs table (all)",
      "effect-jobs ÷ this (p99)",
    ],
    results.systems.map((s) => {
      const run = runsOf(results, "W4", s.id)[0]
      const r = run?.ok ? run.result : undefined
      if (!r) return [s.label, failure(run) ?? "–", "–", "–", "–", "–", "–", "–", "–", "–", "–", "–"]
      const rss = r.rss_mb as Array<{ rss_mb: number; heap_used_mb?: number }>
      // Older results sampled the RSS alone.
      const heaps = rss.flatMap((sample) => (sample.heap_used_mb === undefined ? [] : [sample.heap_used_mb]))
      // Older results have no windows; the last window is partial (the drain), so the one
      // before it is compared with the first.
      const windows = (r.latency_windows ?? []) as Array<{ t_s: number; p50_ms: number }>
      const inRun = windows.filter((w) => w.t_s + results.scale.rssEverySeconds <= r.seconds)
      const drift =
        inRun.length > 1 ? `${ms(inRun[0]!.p50_ms)} → ${ms(inRun[inRun.length - 1]!.p50_ms)}` : "–"
      return [
        s.label,
        String(r.concurrency),
        `${fmt(r.offered_rate)} / ${fmt(r.producer.achieved_rate)}`,
        ms(r.latency.p50_ms),
        ms(r.latency.p99_ms),
        ms(r.latency.max_ms),
        drift,
        r.kept_up === false
          ? `not drained: ${fmt(r.backlog_at_end)} left after ${fmt(r.drain_limit_ms / 1000)} s`
          : r.drain_ms === undefined
            ? "–"
            : (r.drain_ms / 1000).toFixed(1),
        `${Math.round(rss[0]!.rss_mb)} → ${Math.round(rss[rss.length - 1]!.rss_mb)} (${Math.round(r.peak_rss_mb)})`,
        heaps.length === 0 ? "–" : String(Math.round(Math.max(...heaps))),
        storeFigure(r.store),
        s.id === reference ? "–" : ratio(ref?.latency.p99_ms, r.latency.p99_ms),
      ]
    }),
    "lrrrrrrrrrrr",
  )
}

const w5Table = (results: Results) => {
  const processes = results.scale.scaleProcesses
  const byProcesses = (system: string, n: number) =>
    repeated(
      okOf(results, "W5", system)
        .map((r) => r.result!)
        .filter((r) => r.processes === n),
      (r) => r.jobs_per_s,
    )
  const most = processes[processes.length - 1]!
  const ref = byProcesses(reference, most)?.median
  return table(
    [
      "system",
      "concurrency per process",
      ...processes.map((n) => `${n} process${n === 1 ? "" : "es"}, jobs/s`),
      `speed-up ${processes[0]} → ${most}`,
      `effect-jobs ÷ this (${most} processes)`,
    ],
    results.systems.map((s) => {
      const runs = runsOf(results, "W5", s.id)
      const figures = processes.map((n) => byProcesses(s.id, n))
      const first = figures[0]?.median
      const last = figures[figures.length - 1]?.median
      // The runs follow the order of `processes`.
      return [
        s.label,
        figures.find(Boolean)?.run.concurrency_per_process?.toString() ?? failure(runs[0]) ?? "–",
        ...figures.map((f, i) =>
          f ? `${fmt(f.median)}${f.count > 1 ? ` (${spread(f)})` : ""}` : (failure(runs[i]) ?? "–"),
        ),
        first && last ? `${(last / first).toFixed(2)}×` : "–",
        s.id === reference ? "–" : ratio(ref, last),
      ]
    }),
    `ll${"r".repeat(processes.length + 2)}`,
  )
}

/** Where effect-jobs' source changed during the run, the commits its runs came from. */
const sourceNote = (results: Results): Array<string> => {
  const states = [...new Set(results.runs.map((r) => r.source).filter((x): x is string => Boolean(x)))]
  if (states.length === 0) return []
  return states.length === 1
    ? [`effect-jobs ran from this repository's source at ${states[0]}.`]
    : [
        `effect-jobs' source changed during the run: its runs came from ${states.join(", ")} (each run's is in the results file).`,
      ]
}

const problems = (results: Results) => [
  ...new Set(
    results.runs
      .filter((r) => !r.ok)
      .map((r) =>
        r.skipped
          ? `${r.workload} ${labelOf(results, r.system)}: not run: ${r.skipped}.`
          : `${r.workload} ${labelOf(results, r.system)} failed: ${r.error}`,
      ),
  ),
]

const settingsList = (results: Results) =>
  results.systems
    .map((s) => {
      const best = bestW1(results, s.id)
      const settings = best?.run.settings ?? firstOk(results, "W3", s.id)?.settings
      return `- **${s.label}** (\`${s.id}\`): concurrency is ${s.concurrency}. Settings of its best W1 run: \`${JSON.stringify(settings ?? {})}\``
    })
    .join("\n")

const quickNote = (results: Results) =>
  `At quick scale the fastest W1 and W5 runs last about a second, so each system's start-up and its first few fetches weigh far more than over ${fmt(results.scale.jobs * 10)} jobs: a system that fetches large batches (pg-boss at its largest setting takes the ${fmt(results.scale.jobs)} jobs in a few fetches) looks better than it would at full scale, and W4's offered rates, taken from these W1 figures, can exceed what a system sustains while it also inserts.`

export const section = (results: Results): string => {
  const server = results.server as Record<string, any>
  const pgSettings = server.postgres?.settings ?? {}
  const redis = server.redis ?? {}
  const machine = results.machine as Record<string, any>
  const versions = Object.entries(results.versions)
    .map(([name, version]) => `${name} ${version}`)
    .join(", ")
  const quick = results.scale.name === "quick"
  const lines = [
    startMarker,
    "<!-- Generated by bench/compare/report.ts from docs/benchmarks-compare.json: edit the generator, not this text. -->",
    "",
    `### Figures: ${scaleLabel(results)}`,
    "",
    quick
      ? `> **Quick scale.** These figures come from \`${results.command}\`, a development pass at a tenth of the jobs and with W4 cut to ${results.scale.steadySeconds} s. Short runs are noisy: read them for orders of magnitude. \`npm run bench:compare\` produces the full-scale figures.`
      : `> Full scale, from \`${results.command}\`.`,
    "",
    `Machine: ${machine.cpus} cores (${machine.cpu_model}), ${machine.memory_gib} GiB, ${machine.platform}, Node ${machine.node}; load average at the start ${(machine.load_average_at_start ?? []).join(", ")} (1, 5, 15 min; above 0, other work shared the machine). PostgreSQL ${server.postgres?.server_version} (shared_buffers ${pgSettings.shared_buffers}, synchronous_commit ${pgSettings.synchronous_commit}, fsync ${pgSettings.fsync}, autovacuum ${pgSettings.autovacuum}); Redis ${redis.version} (appendonly ${redis.appendonly}, save ${redis.save}). The whole run took ${Math.round(results.wall_s / 60)} min.`,
    "",
    `Versions: ${versions}.`,
    "",
    "![W1 burn-down jobs/s and W2 latency p50/p99 per system](images/compare.svg)",
    "",
    "Ratios are effect-jobs on PostgreSQL ÷ the other system: for throughput above 1× means effect-jobs is faster, for latency below 1× means effect-jobs is faster.",
    "",
    `#### W1 burn-down (${fmt(results.scale.jobs)} jobs)`,
    "",
    repeats(results) > 1
      ? `One run at each concurrency of the sweep, then ${repeats(results) - 1} more at the fastest: the best figure is the median of its ${repeats(results)} runs, with their range, and the ratios are between medians.`
      : "One run at each concurrency; the best figure is the fastest of them.",
    "",
    w1Table(results),
    "",
    `#### W2 latency (${fmt(results.scale.latencySamples)} sequential inserts)`,
    "",
    "Each system at its best W1 concurrency; the inserts come from a separate process (for PGlite, the worker's own).",
    "",
    w2Table(results),
    "",
    `#### W3 bulk insert (${fmt(results.scale.jobs)} jobs, batches of 5,000)`,
    "",
    w3Table(results),
    "",
    `#### W4 steady state (${results.scale.steadySeconds} s at half the best W1 rate)`,
    "",
    "Each system at its best W1 concurrency and its own offered rate: half of its W1 figure, which was measured with nothing inserting meanwhile, so a system whose inserts and claims compete for the same 2 cores may not keep up (the achieved rate and the latencies show it). RSS is the worker process's, sampled every 10 s, with the JavaScript heap in use at the same moments (the rest of the RSS is code, buffers and, for PGlite, the database itself). The p50 of the first and the last full 10-second window (by handler start) shows any drift; the drain is how long the last jobs took to run after the producer stopped. A system gets half the run's length (at least 60 s) to drain; one still behind then shows how many jobs it had not started, and its latencies are those of the jobs it did start.",
    "",
    w4Table(results),
    "",
    `#### W5 scale-out (${fmt(results.scale.jobs)} jobs, one database)`,
    "",
    repeats(results) > 1
      ? `Each process at the system's best W1 concurrency. Each process count ran ${repeats(results)} times, the counts alternating; the figures are medians, with their range, and the speed-up is between medians.`
      : "Each process at the system's best W1 concurrency.",
    "",
    w5Table(results),
    "",
    "#### Settings",
    "",
    settingsList(results),
    "",
    "#### Notes, and what was not measured",
    "",
    ...results.notes
      .concat(sourceNote(results))
      .concat(quick ? [quickNote(results)] : [])
      .concat(problems(results))
      .map((n) => `- ${n}`),
    "",
    "The raw figures, with every run's settings and the stores' statistics, are in [benchmarks-compare.json](benchmarks-compare.json).",
    endMarker,
  ]
  return lines.join("\n")
}

const xml = (s: string) => s.replaceAll("&", "&amp;").replaceAll("<", "&lt;").replaceAll(">", "&gt;")

/** W1 best jobs/s (linear bars) and W2 p50/p99 (paired bars on a log scale), as one SVG. */
export const chart = (results: Results): string => {
  const width = 880
  const labelWidth = 230
  const barLeft = labelWidth + 10
  const barWidth = width - barLeft - 90
  const font = 'font-family="system-ui, -apple-system, Segoe UI, Helvetica, Arial, sans-serif"'
  const isOurs = (id: string) => id.startsWith("effect-jobs")
  const parts: Array<string> = [
    `<text x="16" y="20" font-size="12" fill="#6b7280">effect-jobs beside other Node job systems · ${xml(scaleLabel(results))}</text>`,
  ]
  let y = 46

  parts.push(
    `<text x="16" y="${y}" font-size="16" font-weight="600">W1 burn-down: jobs/s at each system's best concurrency (higher is better)</text>`,
  )
  y += 4
  const w1 = results.systems.map((s) => ({ s, v: bestW1(results, s.id)?.median }))
  const w1Max = Math.max(1, ...w1.map((d) => d.v ?? 0)) * 1.05
  for (const { s, v } of w1) {
    y += 26
    parts.push(
      `<text x="${labelWidth}" y="${y + 13}" font-size="12" text-anchor="end">${xml(s.label)}</text>`,
    )
    if (v === undefined) {
      parts.push(`<text x="${barLeft}" y="${y + 13}" font-size="12" fill="#6b7280">no figure</text>`)
      continue
    }
    const w = Math.max(1, (v / w1Max) * barWidth)
    parts.push(
      `<rect x="${barLeft}" y="${y}" width="${w.toFixed(1)}" height="18" rx="2" fill="${isOurs(s.id) ? "#2563eb" : "#6b7280"}"/>`,
      `<text x="${(barLeft + w + 6).toFixed(1)}" y="${y + 13}" font-size="12">${fmt(v)}</text>`,
    )
  }

  y += 56
  parts.push(
    `<text x="16" y="${y}" font-size="16" font-weight="600">W2 insert-to-start latency, ms, log scale (lower is better)</text>`,
  )
  y += 12
  const w2 = results.systems.map((s) => ({ s, r: firstOk(results, "W2", s.id) }))
  const values = w2
    .flatMap(({ r }) => (r ? [r.p50_ms as number, r.p99_ms as number] : []))
    .filter((v) => v > 0)
  const lo = 10 ** Math.floor(Math.log10(Math.min(...values, 1)))
  const hi = 10 ** Math.ceil(Math.log10(Math.max(...values, 10)))
  const xOf = (v: number) =>
    barLeft + ((Math.log10(Math.max(v, lo)) - Math.log10(lo)) / Math.log10(hi / lo)) * barWidth
  const gridTop = y + 8
  const rowsHeight = w2.length * 34 + 26
  for (let d = lo; d <= hi * 1.0001; d *= 10) {
    const x = xOf(d).toFixed(1)
    parts.push(
      `<line x1="${x}" y1="${gridTop}" x2="${x}" y2="${gridTop + rowsHeight}" stroke="#e5e7eb"/>`,
      `<text x="${x}" y="${gridTop + rowsHeight + 14}" font-size="11" text-anchor="middle" fill="#6b7280">${d >= 1 ? fmt(d) : d} ms</text>`,
    )
  }
  for (const { s, r } of w2) {
    y += 34
    parts.push(
      `<text x="${labelWidth}" y="${y + 12}" font-size="12" text-anchor="end">${xml(s.label)}</text>`,
    )
    if (!r) {
      parts.push(`<text x="${barLeft + 4}" y="${y + 12}" font-size="12" fill="#6b7280">no figure</text>`)
      continue
    }
    const dark = isOurs(s.id) ? "#2563eb" : "#6b7280"
    const light = isOurs(s.id) ? "#93c5fd" : "#d1d5db"
    for (const [i, [name, v, color]] of (
      [
        ["p50", r.p50_ms as number, dark],
        ["p99", r.p99_ms as number, light],
      ] as const
    ).entries()) {
      const top = y - 4 + i * 13
      const w = Math.max(1, xOf(v) - barLeft)
      parts.push(
        `<rect x="${barLeft}" y="${top}" width="${w.toFixed(1)}" height="11" rx="2" fill="${color}"/>`,
        `<text x="${(barLeft + w + 6).toFixed(1)}" y="${top + 9}" font-size="11">${name} ${ms(v)}</text>`,
      )
    }
  }
  y += 76
  parts.push(
    `<text x="16" y="${y}" font-size="11" fill="#6b7280">${xml(scaleLabel(results))}; ${results.machine.cpus as number} cores, Node ${xml(String(results.machine.node))}; npm run bench:compare</text>`,
  )
  const height = y + 16
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" ${font}>`,
    `<rect width="${width}" height="${height}" fill="#ffffff"/>`,
    ...parts,
    "</svg>",
    "",
  ].join("\n")
}

/** Replaces the text between the markers (which must already be in the file). */
export const replaceSection = (markdown: string, generated: string): string => {
  const start = markdown.indexOf(startMarker)
  const end = markdown.indexOf(endMarker)
  if (start < 0 || end < start)
    throw new Error(`docs/benchmarks.md has no ${startMarker} … ${endMarker} section`)
  return markdown.slice(0, start) + generated + markdown.slice(end + endMarker.length)
}

export const writeDocs = (results: Results): void => {
  const docs = join(repoRoot, "docs")
  const path = join(docs, "benchmarks.md")
  writeFileSync(path, replaceSection(readFileSync(path, "utf8"), section(results)))
  mkdirSync(join(docs, "images"), { recursive: true })
  writeFileSync(join(docs, "images", "compare.svg"), chart(results))
  writeFileSync(join(docs, "benchmarks-compare.json"), `${JSON.stringify(results, null, 2)}\n`)
}
