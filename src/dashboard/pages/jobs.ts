/** The jobs list (tabs by state, filters in the URL) and one job in full. */
import { Effect, Schema } from "effect"
import type { JobRecord, JobState } from "../../JobRecord.js"
import { JobState as JobStateSchema } from "../../JobRecord.js"
import { queueInfos, queueNames, type Sources, stateCounts, states } from "../data.js"
import { count, duration, type Html, html, json, time } from "../html.js"
import { actionForm, can, layout, type View } from "../layout.js"
import type { Field } from "../options.js"

export type Redact = (value: unknown, field: Field, job: JobRecord) => unknown

const isState = Schema.is(JobStateSchema)

export interface JobsFilter {
  readonly state: JobState | undefined
  readonly queue: string | undefined
  readonly type: string | undefined
  readonly page: number
}

export const readFilter = (query: URLSearchParams): JobsFilter => {
  const state = query.get("state") ?? undefined
  const page = Number(query.get("page") ?? "0")
  return {
    state: state !== undefined && isState(state) ? state : undefined,
    queue: query.get("queue") || undefined,
    type: query.get("type") || undefined,
    page: Number.isSafeInteger(page) && page >= 0 ? page : 0,
  }
}

const filterQuery = (filter: JobsFilter, change: Partial<JobsFilter>): string => {
  const next = { ...filter, ...change }
  const params = new URLSearchParams()
  if (next.state) params.set("state", next.state)
  if (next.queue) params.set("queue", next.queue)
  if (next.type) params.set("type", next.type)
  if (next.page > 0) params.set("page", String(next.page))
  const text = params.toString()
  return text === "" ? "" : `?${text}`
}

const stateBadge = (state: JobState) => html`<span class="badge state-${state}">${state}</span>`

const jobRow = (view: View, job: JobRecord) => {
  const lastError = job.errors.at(-1)
  return html`<tr data-href="${view.prefix}/jobs/${job.id}">
<td class="num"><a href="${view.prefix}/jobs/${job.id}">${job.id}</a></td><td>${stateBadge(job.state)}</td>
<td class="type">${job.type}</td><td>${job.queue}</td><td class="num">${job.attempt}/${job.maxAttempts}</td>
<td>${time(job.insertedAt, view.now)}</td><td class="error-text">${lastError?.message ?? ""}</td></tr>`
}

export const jobsPage = (sources: Sources, view: View, pageSize: number) =>
  Effect.gen(function* () {
    const filter = readFilter(view.query)
    const names = filter.queue === undefined ? yield* queueNames(sources) : [filter.queue]
    const [infos, rows] = yield* Effect.all(
      [
        queueInfos(sources, names),
        sources.client.list({
          state: filter.state,
          queue: filter.queue,
          type: filter.type,
          limit: pageSize + 1,
          offset: filter.page * pageSize,
        }),
      ],
      { concurrency: 2 },
    )
    const counts = stateCounts(infos)
    const shown = rows.slice(0, pageSize)
    const more = rows.length > pageSize
    const body = html`<h1>Jobs</h1>
<nav class="tabs">${[undefined, ...states].map(
      (state) =>
        html`<a href="${view.prefix}/jobs${filterQuery(filter, { state: state as JobState | undefined, page: 0 })}"${
          filter.state === state ? html` aria-current="page"` : html``
        }>${state ?? "all"}${state === undefined ? "" : html` <span class="count">${count(counts[state as JobState])}</span>`}</a>`,
    )}</nav>
<form class="filters" method="get" action="${view.prefix}/jobs">
${filter.state ? html`<input type="hidden" name="state" value="${filter.state}">` : ""}
<label>Queue <input name="queue" value="${filter.queue ?? ""}" list="queues"></label>
<datalist id="queues">${names.map((name) => html`<option value="${name}">`)}</datalist>
<label>Type <input name="type" id="filter-type" value="${filter.type ?? ""}"></label>
<button type="submit">Filter</button> <a href="${view.prefix}/jobs">Clear</a></form>
${
  shown.length === 0
    ? html`<p class="empty">No job matches.</p>`
    : html`<div class="scroll"><table class="grid rows" id="jobs"><thead><tr><th class="num">Id</th><th>State</th><th>Type</th><th>Queue</th><th class="num">Attempt</th><th>Inserted</th><th>Last error</th></tr></thead>
<tbody>${shown.map((job) => jobRow(view, job))}</tbody></table></div>`
}
<nav class="pager">${
      filter.page > 0
        ? html`<a rel="prev" href="${view.prefix}/jobs${filterQuery(filter, { page: filter.page - 1 })}">← Newer</a>`
        : ""
    }${more ? html`<a rel="next" href="${view.prefix}/jobs${filterQuery(filter, { page: filter.page + 1 })}">Older →</a>` : ""}</nav>`
    return layout(view, "Jobs", "Jobs", body)
  })

const timings = (job: JobRecord, now: number): Html => {
  const wait = job.attemptedAt === null ? null : job.attemptedAt.getTime() - job.scheduledAt.getTime()
  const end = job.completedAt ?? job.discardedAt ?? job.cancelledAt
  const run = job.attemptedAt !== null && end !== null ? end.getTime() - job.attemptedAt.getTime() : null
  return html`<dl class="facts">
<dt>Inserted</dt><dd>${time(job.insertedAt, now)}</dd><dt>Scheduled</dt><dd>${time(job.scheduledAt, now)}</dd>
<dt>Attempted</dt><dd>${time(job.attemptedAt, now)}</dd><dt>Completed</dt><dd>${time(job.completedAt, now)}</dd>
<dt>Discarded</dt><dd>${time(job.discardedAt, now)}</dd><dt>Cancelled</dt><dd>${time(job.cancelledAt, now)}</dd>
<dt>Queue wait</dt><dd>${wait === null ? "—" : duration(Math.max(0, wait))}</dd>
<dt>Run time</dt><dd>${run === null ? "—" : duration(Math.max(0, run))}</dd></dl>`
}

const actionsFor = (view: View, job: JobRecord): Html => {
  const id = { id: job.id }
  const waiting = job.state === "scheduled" || job.state === "available" || job.state === "retryable"
  return html`<div class="actions">
${job.state !== "executing" && job.state !== "available" ? actionForm(view, "job.retry", id, "Retry") : ""}
${waiting || job.state === "executing" ? actionForm(view, "job.cancel", id, "Cancel", { danger: true, confirm: `Cancel job ${job.id}?` }) : ""}
${job.state !== "executing" ? actionForm(view, "job.delete", id, "Delete", { danger: true, confirm: `Delete job ${job.id}?` }) : ""}
${actionForm(view, "job.duplicate", id, "Duplicate")}</div>`
}

export const jobPage = (view: View, job: JobRecord, redact: Redact) => {
  const args = redact(job.args, "args", job)
  // Editing redacted args would store the redaction: offer it only where nothing is hidden.
  const editable = can(view, "job.editAndRetry") && JSON.stringify(args) === JSON.stringify(job.args)
  const body = html`<p><a href="${view.prefix}/jobs">← Jobs</a></p>
<h1>Job ${job.id} <span class="type">${job.type}</span> ${stateBadge(job.state)}</h1>
${actionsFor(view, job)}
<div class="columns"><section><h2>Job</h2><dl class="facts">
<dt>Queue</dt><dd><a href="${view.prefix}/jobs?queue=${encodeURIComponent(job.queue)}">${job.queue}</a></dd>
<dt>Type</dt><dd><a href="${view.prefix}/jobs?type=${encodeURIComponent(job.type)}">${job.type}</a></dd>
<dt>Priority</dt><dd>${job.priority}</dd><dt>Attempt</dt><dd>${job.attempt} of ${job.maxAttempts}</dd>
<dt>Rescues</dt><dd>${job.rescues}</dd><dt>Node</dt><dd>${job.attemptedBy ?? "—"}</dd>
${job.resourceType === null ? "" : html`<dt>Resource</dt><dd>${job.resourceType} ${job.resourceId}</dd>`}
${typeof job.meta.schedule === "string" ? html`<dt>Schedule</dt><dd><a href="${view.prefix}/schedules#schedule-${job.meta.schedule}">${job.meta.schedule}</a></dd>` : ""}
</dl></section><section><h2>Timings</h2>${timings(job, view.now)}</section></div>
<section><h2>Args</h2>${json(args)}
${
  editable
    ? html`<details class="edit"><summary>Edit args and retry</summary>
<form method="post" action="${view.prefix}/actions/job.editAndRetry"><input type="hidden" name="_csrf" value="${view.csrf}">
<input type="hidden" name="back" value="${view.here}"><input type="hidden" name="id" value="${job.id}">
<textarea name="args" rows="8" spellcheck="false">${JSON.stringify(args, null, 2)}</textarea>
<p class="muted">Inserts a new job of this type with these args; this one stays as it is.</p>
<button type="submit" data-action="job.editAndRetry">Insert with these args</button></form></details>`
    : ""
}</section>
<section><h2>Meta</h2>${json(redact(job.meta, "meta", job))}</section>
<section><h2>Result</h2>${job.result === null ? html`<p class="muted">None.</p>` : json(redact(job.result, "result", job))}</section>
<section><h2>Attempts and errors</h2>${
    job.errors.length === 0
      ? html`<p class="muted">No failed attempt.</p>`
      : html`<ol class="errors">${job.errors.map(
          (
            error,
          ) => html`<li><p><strong>Attempt ${error.attempt}</strong> ${time(error.at, view.now)} <span class="badge">${error.tag}</span></p>
<p class="error-text">${error.message}</p><details><summary>Cause</summary><pre>${error.cause}</pre></details></li>`,
        )}</ol>`
  }</section>`
  return layout(view, `Job ${job.id}`, "Jobs", body)
}
