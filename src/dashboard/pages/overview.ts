/** The overview: every known queue with its counts per state, and the nodes with their heartbeat. */
import { Effect } from "effect"
import { queueInfos, queueNames, type Sources, stateCounts, states } from "../data.js"
import { count, duration, html, time } from "../html.js"
import { layout, type View } from "../layout.js"

export const overview = (sources: Sources, view: View) =>
  Effect.gen(function* () {
    const [names, nodes, leader] = yield* Effect.all(
      [queueNames(sources), sources.client.nodes, sources.client.leader],
      { concurrency: 3 },
    )
    const infos = yield* queueInfos(sources, names)
    const totals = stateCounts(infos)
    const body = html`<h1>Overview</h1>
<section class="cards">${states.map(
      (state) =>
        html`<a class="card state-${state}" href="${view.prefix}/jobs?state=${state}"><span class="label">${state}</span><span class="value">${count(totals[state])}</span></a>`,
    )}</section>
<section><h2>Queues</h2>
${
  infos.length === 0
    ? html`<p class="empty">No queue runs on any node yet.</p>`
    : html`<div class="scroll"><table class="grid"><thead><tr><th>Queue</th>${states.map(
        (state) => html`<th class="num">${state}</th>`,
      )}<th>Paused</th></tr></thead><tbody>${infos.map(
        (info) => html`<tr data-href="${view.prefix}/jobs?queue=${encodeURIComponent(info.name)}">
<td><a href="${view.prefix}/jobs?queue=${encodeURIComponent(info.name)}">${info.name}</a></td>${states.map(
          (state) =>
            html`<td class="num"><a href="${view.prefix}/jobs?queue=${encodeURIComponent(info.name)}&amp;state=${state}">${count(info.states[state].count)}</a></td>`,
        )}<td>${info.paused ? html`<span class="badge warn">paused</span>` : "no"}</td></tr>`,
      )}</tbody></table></div>`
}</section>
<section><h2>Nodes</h2>
${
  nodes.length === 0
    ? html`<p class="empty">No worker node is alive.</p>`
    : html`<div class="scroll"><table class="grid"><thead><tr><th>Node</th><th>Host</th><th>Pid</th><th>Queues</th><th>Started</th><th>Heartbeat</th></tr></thead><tbody>${nodes.map(
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
