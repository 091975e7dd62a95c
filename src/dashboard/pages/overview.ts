/** The overview: every queue of the cluster with its counts per state, and the nodes with their heartbeat. */
import { Effect } from "effect"
import type * as Jobs from "../../Jobs.js"
import { lineChart } from "../chart.js"
import { type Sources, states } from "../data.js"
import { count, duration, type Html, html, time } from "../html.js"
import { layout, type View } from "../layout.js"

/** `3/10 on node-a, 0/10 on node-b`: running out of the limit on each node running the queue. */
export const runningOn = (queue: Jobs.ClusterQueue): Html =>
  queue.nodes.length === 0
    ? html`<span class="muted">no node</span>`
    : html`${queue.nodes.map(
        (node, index) =>
          html`${index === 0 ? "" : ", "}<span title="${node.node}">${node.running}/${node.concurrency}</span> on ${node.node}${
            node.paused ? " (paused)" : ""
          }`,
      )}`

export const queueTable = (view: View, queues: ReadonlyArray<Jobs.ClusterQueue>): Html =>
  queues.length === 0
    ? html`<p class="empty">The cluster knows no queue yet.</p>`
    : html`<div class="scroll"><table class="grid rows"><thead><tr><th>Queue</th>${states.map(
        (state) => html`<th class="num">${state}</th>`,
      )}<th>Running</th></tr></thead><tbody>${queues.map((queue) => {
        const link = `${view.prefix}/jobs?queue=${encodeURIComponent(queue.name)}`
        return html`<tr data-href="${link}"><td><a href="${link}">${queue.name}</a>${
          queue.paused ? html` <span class="badge warn">paused</span>` : ""
        }${queue.orphaned ? html` <span class="badge warn" title="available jobs and no live node runs it">orphaned</span>` : ""}</td>
${states.map((state) => html`<td class="num"><a href="${link}&amp;state=${state}">${count(queue.counts[state])}</a></td>`)}
<td>${runningOn(queue)}</td></tr>`
      })}</tbody></table></div>`

const perMinute = (n: number) =>
  n >= 1000
    ? `${(n / 1000).toFixed(n >= 10_000 ? 0 : 1)}k`
    : n >= 10
      ? n.toFixed(0)
      : String(Number(n.toFixed(2)))

/** Throughput and latency over the window the URL names (`?window=month`, or the last day). */
const charts = (view: View, throughput: Jobs.Throughput): Html => {
  const { points, stepMillis, window } = throughput
  const minutes = stepMillis / 60_000
  const start = points[0]?.start.getTime() ?? view.now
  const common = { start, stepMillis }
  const latency = (title: string, p50: ReadonlyArray<number | null>, p95: ReadonlyArray<number | null>) =>
    lineChart({
      ...common,
      title,
      scale: "log",
      format: duration,
      series: [
        { name: "p50", kind: "p50", values: p50 },
        { name: "p95", kind: "p95", values: p95 },
      ],
    })
  const tab = (name: Jobs.ThroughputWindow, label: string) =>
    html`<a href="${view.prefix}/?window=${name}"${window === name ? html` aria-current="page"` : html``}>${label}</a>`
  return html`<section class="charts" id="charts"><h2>Throughput and latency</h2>
<nav class="tabs">${tab("day", "Last 24 hours")}${tab("month", "Last 30 days")}</nav>
<div class="chart-grid">${lineChart({
    ...common,
    title: `Jobs finished per minute (${minutes === 1 ? "each minute" : minutes < 60 ? `mean of ${minutes} minutes` : "mean of each hour"})`,
    format: perMinute,
    series: [
      { name: "completed", kind: "completed", values: points.map((p) => p.completed / minutes) },
      { name: "failed", kind: "failed", values: points.map((p) => p.failed / minutes) },
    ],
  })}
${latency(
  "Queue wait",
  points.map((p) => p.waitP50),
  points.map((p) => p.waitP95),
)}
${latency(
  "Run time",
  points.map((p) => p.runP50),
  points.map((p) => p.runP95),
)}</div>
<p class="muted">From the aggregates the leader stores each minute (UTC). Failed: discarded, out of attempts or by the handler.</p></section>`
}

export const overview = (sources: Sources, view: View) =>
  Effect.gen(function* () {
    const window: Jobs.ThroughputWindow = view.query.get("window") === "month" ? "month" : "day"
    const [queues, nodes, leader, throughput] = yield* Effect.all(
      [
        sources.client.listQueues,
        sources.client.nodes,
        sources.client.leader,
        sources.client.throughput(window),
      ],
      { concurrency: 4 },
    )
    const totals = Object.fromEntries(
      states.map((state) => [state, queues.reduce((sum, queue) => sum + queue.counts[state], 0)]),
    ) as Record<(typeof states)[number], number>
    const body = html`<h1>Overview</h1>
<section class="cards">${states.map(
      (state) =>
        html`<a class="card state-${state}" href="${view.prefix}/jobs?state=${state}"><span class="label">${state}</span><span class="value">${count(totals[state])}</span></a>`,
    )}</section>
${charts(view, throughput)}
<section><h2>Queues</h2>${queueTable(view, queues)}</section>
<section><h2>Nodes</h2>
${
  nodes.length === 0
    ? html`<p class="empty">No worker node is alive.</p>`
    : html`<div class="scroll"><table class="grid"><thead><tr><th>Node</th><th>Host</th><th class="num">Pid</th><th>Queues</th><th>Started</th><th>Heartbeat</th></tr></thead><tbody>${nodes.map(
        (
          node,
        ) => html`<tr><td>${node.id}${node.id === leader ? html` <span class="badge">leader</span>` : ""}</td>
<td>${node.host}</td><td class="num">${node.pid}</td><td>${node.queues.join(", ")}</td>
<td>${time(node.startedAt, view.now)}</td><td>${duration(Math.max(0, view.now - node.heartbeatAt.getTime()))} ago</td></tr>`,
      )}</tbody></table></div>`
}
<p class="muted">Leader: ${leader ?? "none"}</p></section>`
    return layout(view, "Overview", "Overview", body)
  })
