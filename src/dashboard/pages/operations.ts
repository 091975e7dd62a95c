/** The pages of what runs the jobs: queues, cron schedules and recurring tasks. */
import { Cron, Duration, Effect, Either } from "effect"
import { queueInfos, queueNames, type Sources, states } from "../data.js"
import { count, html, json, time } from "../html.js"
import { actionForm, layout, type View } from "../layout.js"

export const queuesPage = (sources: Sources, view: View) =>
  Effect.gen(function* () {
    const [names, nodes] = yield* Effect.all([queueNames(sources), sources.client.nodes], { concurrency: 2 })
    const infos = yield* queueInfos(sources, names)
    const body = html`<h1>Queues</h1>
${
  infos.length === 0
    ? html`<p class="empty">No queue runs on any node yet.</p>`
    : infos.map((info) => {
        const runners = nodes.filter((node) => node.queues.includes(info.name))
        return html`<section class="queue" id="queue-${info.name}"><h2>${info.name} ${
          info.paused ? html`<span class="badge warn">paused</span>` : ""
        }</h2>
<p>${states.map((state) => html`<a class="pill state-${state}" href="${view.prefix}/jobs?queue=${encodeURIComponent(info.name)}&amp;state=${state}">${state} ${count(info.states[state].count)}</a> `)}</p>
<p class="muted">Runs on ${runners.length === 0 ? "no node" : runners.map((node) => node.id).join(", ")}.</p>
<div class="actions">${
          info.paused
            ? actionForm(view, "queue.resume", { queue: info.name }, "Resume")
            : actionForm(view, "queue.pause", { queue: info.name }, "Pause")
        }${actionForm(view, "queue.scale", { queue: info.name }, "Scale", {
          extra: html`<label>Concurrency per node <input type="number" name="concurrency" min="1" required size="5"></label> `,
        })}</div></section>`
      })
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
<dl class="facts"><dt>Expression</dt><dd><code>${schedule.expression}</code> (${schedule.timezone ?? "UTC"})</dd>
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
    : html`<div class="scroll"><table class="grid"><thead><tr><th>Name</th><th>Runs</th><th>State</th><th class="num">Successes</th><th class="num">Failures</th><th>Started</th><th>Last run</th><th>Next run</th><th>Last error</th></tr></thead><tbody>${tasks.map(
        (
          task,
        ) => html`<tr><td><a href="${view.prefix}/tasks?task=${encodeURIComponent(task.id)}">${task.name}</a>${
          task.hidden ? html` <span class="badge">hidden</span>` : ""
        }</td>
<td>${task.cron === null ? (task.recurs && task.every !== null ? `every ${Duration.format(task.every)}` : "once") : html`<code>${task.cron}</code>`}</td>
<td>${task.status}${task.runningOn === null ? "" : ` on ${task.runningOn}`}</td>
<td class="num">${count(task.successes)}</td><td class="num">${count(task.failures)}</td>
<td>${time(task.startedAt, view.now)}</td><td>${time(task.lastRunAt, view.now)}</td><td>${time(task.nextRunAt, view.now)}</td>
<td class="error-text">${task.lastError ?? ""}</td></tr>`,
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
