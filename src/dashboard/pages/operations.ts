/** The pages of what runs the jobs: queues, cron schedules and recurring tasks. */
import { Cron, Duration, Effect, Either } from "effect"
import type * as Jobs from "../../Jobs.js"
import * as CronWords from "../cronWords.js"
import { type Sources, states } from "../data.js"
import { count, type Html, html, json, time } from "../html.js"
import { actionForm, layout, type View } from "../layout.js"
import { runningOn } from "./overview.js"

const limits = (queue: Jobs.ClusterQueue): Html => html`<dl class="facts">
<dt>Running</dt><dd>${runningOn(queue)}</dd>
<dt>Scaled to</dt><dd>${queue.concurrency === null ? "each node's own concurrency" : `${queue.concurrency} per node`}</dd>
<dt>Global limit</dt><dd>${queue.globalLimit ?? "none"}</dd>
<dt>Rate limit</dt><dd>${queue.rateLimit === null ? "none" : `${queue.rateLimit.limit} per ${Duration.format(Duration.millis(queue.rateLimit.periodMillis))}`}</dd>
<dt>Dead letters to</dt><dd>${queue.deadLetter ?? "none"}</dd></dl>`

/** Each node running the queue, with its own pause, resume and scale. */
const nodeControls = (view: View, queue: Jobs.ClusterQueue): Html =>
  queue.nodes.length === 0
    ? html``
    : html`<div class="scroll"><table class="grid nodes"><thead><tr><th>Node</th><th class="num">Running</th><th></th></tr></thead><tbody>${queue.nodes.map(
        (
          node,
        ) => html`<tr data-node="${node.node}"><td>${node.node}${node.paused ? html` <span class="badge warn">paused</span>` : ""}</td>
<td class="num">${node.running}/${node.concurrency}</td><td class="actions">${
          node.paused
            ? actionForm(view, "queue.resume", { queue: queue.name, node: node.node }, "Resume here")
            : actionForm(view, "queue.pause", { queue: queue.name, node: node.node }, "Pause here")
        }${actionForm(view, "queue.scale", { queue: queue.name, node: node.node }, "Scale here", {
          extra: html`<label>Concurrency <input type="number" name="concurrency" min="1" required size="5"></label> `,
        })}</td></tr>`,
      )}</tbody></table></div>`

export const queuesPage = (sources: Sources, view: View) =>
  Effect.gen(function* () {
    const [queues, orphans] = yield* Effect.all([sources.client.listQueues, sources.client.orphans], {
      concurrency: 2,
    })
    const body = html`<h1>Queues</h1>
${
  orphans.types.length === 0
    ? ""
    : html`<section class="warning"><h2>Job types no live node handles</h2><ul>${orphans.types.map(
        (orphan) =>
          html`<li><a class="type" href="${view.prefix}/jobs?type=${encodeURIComponent(orphan.type)}">${orphan.type}</a>: ${count(orphan.waiting)} waiting in ${orphan.queues.join(", ")}</li>`,
      )}</ul></section>`
}
${
  queues.length === 0
    ? html`<p class="empty">The cluster knows no queue yet.</p>`
    : queues.map(
        (queue) => html`<section class="queue" id="queue-${queue.name}"><h2>${queue.name} ${
          queue.paused ? html`<span class="badge warn">paused</span>` : ""
        }${queue.orphaned ? html` <span class="badge warn">orphaned: no live node runs it</span>` : ""}</h2>
<p>${states.map((state) => html`<a class="pill state-${state}" href="${view.prefix}/jobs?queue=${encodeURIComponent(queue.name)}&amp;state=${state}">${state} ${count(queue.counts[state])}</a> `)}</p>
${limits(queue)}
<div class="actions cluster"><span class="muted">Every node:</span> ${
          queue.paused
            ? actionForm(view, "queue.resume", { queue: queue.name }, "Resume")
            : actionForm(view, "queue.pause", { queue: queue.name }, "Pause")
        }${actionForm(view, "queue.scale", { queue: queue.name }, "Scale", {
          extra: html`<label>Concurrency per node <input type="number" name="concurrency" min="1" required size="5"></label> `,
        })}</div>${nodeControls(view, queue)}</section>`,
      )
}`
    return layout(view, "Queues", "Queues", body)
  })

/** The next `n` ticks of an expression, or none when it does not parse. */
const nextTicks = (expression: string, timezone: string | null, from: number, n: number) => {
  const parsed = Cron.parse(expression, timezone ?? "UTC")
  if (Either.isLeft(parsed)) return []
  const ticks: Array<Date> = []
  const sequence = Cron.sequence(parsed.right, new Date(from))
  for (const tick of sequence) {
    ticks.push(tick)
    if (ticks.length >= n) break
  }
  return ticks
}

export const schedulesPage = (sources: Sources, view: View) =>
  Effect.gen(function* () {
    const list = yield* sources.schedules.list
    const body = html`<h1>Schedules</h1>
${
  list.length === 0
    ? html`<p class="empty">No cron schedule is stored.</p>`
    : list.map(
        (schedule) => html`<section class="schedule" id="schedule-${schedule.name}"><h2>${schedule.name} ${
          schedule.paused ? html`<span class="badge warn">paused</span>` : ""
        }</h2>
<dl class="facts"><dt>Expression</dt><dd><code>${schedule.expression}</code> (${schedule.timezone ?? "UTC"})${
          CronWords.describe(schedule.expression) === undefined
            ? ""
            : html`<div class="cron-words">${CronWords.describe(schedule.expression)} (${schedule.timezone ?? "UTC"})</div>`
        }</dd>
<dt>Job</dt><dd><span class="type">${schedule.type}</span> in <a href="${view.prefix}/jobs?queue=${encodeURIComponent(schedule.queue)}">${schedule.queue}</a></dd>
<dt>Args</dt><dd>${json(schedule.args)}</dd>
<dt>Last run</dt><dd>${time(schedule.lastRunAt, view.now)}${
          schedule.lastJobId === null
            ? ""
            : html` (<a href="${view.prefix}/jobs/${schedule.lastJobId}">job ${schedule.lastJobId}</a>)`
        }</dd>
<dt>Next runs</dt><dd>${
          schedule.paused
            ? html`<span class="muted">paused</span>`
            : html`<ol class="ticks">${nextTicks(schedule.expression, schedule.timezone, view.now, 5).map(
                (tick) => html`<li>${tick.toISOString()} (${time(tick, view.now)})</li>`,
              )}</ol>`
        }</dd></dl>
<div class="actions">${
          schedule.paused
            ? actionForm(view, "schedule.resume", { name: schedule.name }, "Resume")
            : actionForm(view, "schedule.pause", { name: schedule.name }, "Pause")
        }${actionForm(view, "schedule.runNow", { name: schedule.name }, "Run now")}</div></section>`,
      )
}`
    return layout(view, "Schedules", "Schedules", body)
  })

export const tasksPage = (sources: Sources, view: View) =>
  Effect.gen(function* () {
    const tasks = yield* sources.client.taskStats({ includeHidden: true })
    const selected = view.query.get("task")
    const history = selected === null ? undefined : yield* sources.client.taskHistory(selected, { limit: 50 })
    const body = html`<h1>Tasks</h1>
${
  tasks.length === 0
    ? html`<p class="empty">No recurring task is stored.</p>`
    : html`<div class="scroll"><table class="grid"><thead><tr><th>Name</th><th>Runs</th><th>State</th><th class="num">Successes</th><th class="num">Failures</th><th>Started</th><th>Last run</th><th>Next run</th><th>Last error</th><th>Actions</th></tr></thead><tbody>${tasks.map(
        (
          task,
        ) => html`<tr><td><a href="${view.prefix}/tasks?task=${encodeURIComponent(task.id)}">${task.name}</a>${
          task.hidden ? html` <span class="badge">hidden</span>` : ""
        }</td>
<td>${task.cron === null ? (task.recurs && task.every !== null ? `every ${Duration.format(task.every)}` : "once") : html`<code>${task.cron}</code>`}</td>
<td>${task.status}${task.runningOn === null ? "" : ` on ${task.runningOn}`}${
          task.paused ? html` <span class="badge warn">paused</span>` : ""
        }${task.runRequestedAt === null ? "" : html` <span class="badge">run requested</span>`}</td>
<td class="num">${count(task.successes)}</td><td class="num">${count(task.failures)}</td>
<td>${time(task.startedAt, view.now)}</td><td>${time(task.lastRunAt, view.now)}</td><td>${time(task.nextRunAt, view.now)}</td>
<td class="error-text">${task.lastError ?? ""}</td>
<td><div class="actions">${actionForm(view, "task.runNow", { task: task.id }, "Run now")}${
          task.paused
            ? actionForm(view, "task.resume", { task: task.id }, "Resume")
            : actionForm(view, "task.pause", { task: task.id }, "Pause")
        }</div></td></tr>`,
      )}</tbody></table></div>`
}
${
  history === undefined || selected === null
    ? ""
    : html`<section><h2>History of ${selected}</h2>${
        history.length === 0
          ? html`<p class="empty">No run yet.</p>`
          : html`<div class="scroll"><table class="grid"><thead><tr><th>Started</th><th>Node</th><th>Trigger</th><th>Outcome</th><th>Error</th><th>State after</th></tr></thead><tbody>${history.map(
              (
                run,
              ) => html`<tr><td>${time(run.startedAt, view.now)}</td><td>${run.node}</td><td>${run.trigger}</td>
<td><span class="badge outcome-${run.outcome}">${run.outcome}</span></td><td class="error-text">${run.error ?? ""}</td><td>${json(run.state)}</td></tr>`,
            )}</tbody></table></div>`
      }</section>`
}`
    return layout(view, "Tasks", "Tasks", body)
  })
