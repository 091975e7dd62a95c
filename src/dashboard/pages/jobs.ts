/** The jobs list (tabs by state, filters in the URL) and one job in full. */
import { Effect, Either, Schema } from "effect"
import type { JobCount } from "../../internal/api/service.js"
import * as JobFilter from "../../JobFilter.js"
import type { JobRecord, JobState } from "../../JobRecord.js"
import { JobState as JobStateSchema } from "../../JobRecord.js"
import { type Sources, states } from "../data.js"
import { count, duration, type Html, html, json, time } from "../html.js"
import { actionForm, can, layout, type View } from "../layout.js"
import type { Field } from "../options.js"

export type Redact = (value: unknown, field: Field, job: JobRecord) => unknown

const isState = Schema.is(JobStateSchema)

/** The jobs page's filter as it stands in the URL, so a filtered page is a link to share. */
export interface JobsQuery {
  readonly state: JobState | undefined
  readonly queue: string
  readonly type: string
  readonly node: string
  readonly error: string
  /** `args.user.id:42 meta.tenant:acme`: conditions on args and meta, space-separated. */
  readonly search: string
  readonly schedule: string
  /** `post` or `post:42`. */
  readonly resource: string
  /** Inserted from, to: `2026-01-31T12:00` in UTC. */
  readonly from: string
  readonly to: string
  /** One group of the failures page: the last error's tag and message pattern. */
  readonly errorTag: string
  readonly errorPattern: string
  readonly cursor: string | undefined
}

const textFields = [
  "queue",
  "type",
  "node",
  "error",
  "search",
  "schedule",
  "resource",
  "from",
  "to",
  "errorTag",
  "errorPattern",
] as const

export const readQuery = (query: URLSearchParams): JobsQuery => {
  const state = query.get("state") ?? undefined
  // A pattern is matched as it is, spaces included.
  const read = (name: (typeof textFields)[number]) =>
    name === "errorPattern" || name === "errorTag" ? (query.get(name) ?? "") : (query.get(name) ?? "").trim()
  const text = Object.fromEntries(textFields.map((name) => [name, read(name)])) as Record<
    (typeof textFields)[number],
    string
  >
  return {
    ...text,
    state: state !== undefined && isState(state) ? state : undefined,
    cursor: query.get("cursor") || undefined,
  }
}

const parseTime = (name: string, text: string): Either.Either<Date | undefined, string> => {
  if (text === "") return Either.right(undefined)
  const date = new Date(/[zZ]|[+-]\d\d:\d\d$/.test(text) ? text : `${text}Z`)
  return Number.isNaN(date.getTime())
    ? Either.left(`"${text}" is not a time for ${name}`)
    : Either.right(date)
}

/** The client's filter for a query, or why the query is not one (shown to the operator). */
export const toFilter = (query: JobsQuery): Either.Either<JobFilter.Filter, string> =>
  Either.gen(function* () {
    const containment =
      query.search === ""
        ? {}
        : yield* Either.mapLeft(JobFilter.parse(query.search.split(/\s+/)), (error) => error.message)
    const from = yield* parseTime("from", query.from)
    const to = yield* parseTime("to", query.to)
    const [resourceType, ...resourceId] = query.resource.split(":")
    const group = query.errorPattern === "" && query.errorTag === "" ? undefined : query
    return {
      ...containment,
      // A group of failures is of the failed jobs: one that failed and then completed keeps its errors.
      state: query.state ?? (group === undefined ? undefined : (["retryable", "discarded"] as const)),
      errorGroup: group === undefined ? undefined : { tag: group.errorTag, pattern: group.errorPattern },
      queue: query.queue || undefined,
      type: query.type || undefined,
      node: query.node || undefined,
      error: query.error || undefined,
      schedule: query.schedule || undefined,
      resource:
        resourceType === undefined || resourceType === ""
          ? undefined
          : { type: resourceType, id: resourceId.length === 0 ? undefined : resourceId.join(":") },
      inserted: from === undefined && to === undefined ? undefined : { from, to },
    }
  })

/** The URL query of `query` with `change`, for links that keep the rest of the filter. */
export const queryString = (query: JobsQuery, change: Partial<JobsQuery>): string => {
  const next = { ...query, ...change }
  const params = new URLSearchParams()
  if (next.state) params.set("state", next.state)
  for (const name of textFields) if (next[name] !== "") params.set(name, next[name])
  if (next.cursor) params.set("cursor", next.cursor)
  const text = params.toString()
  return text === "" ? "" : `?${text}`
}

const stateBadge = (state: JobState) => html`<span class="badge state-${state}">${state}</span>`

const jobRow = (view: View, job: JobRecord, selectable: boolean) => {
  const lastError = job.errors.at(-1)
  return html`<tr data-href="${view.prefix}/jobs/${job.id}">
${selectable ? html`<td><input type="checkbox" name="id" value="${job.id}" form="bulk" aria-label="select job ${job.id}"></td>` : ""}
<td class="num"><a href="${view.prefix}/jobs/${job.id}">${job.id}</a></td><td>${stateBadge(job.state)}</td>
<td class="type">${job.type}</td><td>${job.queue}</td><td class="num">${job.attempt}/${job.maxAttempts}</td>
<td>${time(job.insertedAt, view.now)}</td><td class="error-text">${lastError?.message ?? ""}</td></tr>`
}

const filterForm = (view: View, query: JobsQuery, queues: ReadonlyArray<string>) => {
  const field = (name: (typeof textFields)[number], label: string, placeholder = "", id = "") =>
    html`<label>${label} <input name="${name}" value="${query[name]}" placeholder="${placeholder}"${
      id === "" ? "" : html` id="${id}"`
    }${name === "queue" ? html` list="queues"` : ""}></label>`
  return html`<form class="filters" method="get" action="${view.prefix}/jobs">
${query.state ? html`<input type="hidden" name="state" value="${query.state}">` : ""}
${field("search", "Args / meta", "args.user.id:42 meta.tenant:acme", "filter-search")}
${field("queue", "Queue")}<datalist id="queues">${queues.map((name) => html`<option value="${name}">`)}</datalist>
${field("type", "Type")}${field("error", "Error text")}${field("node", "Node")}
${field("schedule", "Schedule")}${field("resource", "Resource", "post:42")}
${field("from", "Inserted from (UTC)", "2026-01-31T12:00")}${field("to", "to")}
<button type="submit">Filter</button> <a href="${view.prefix}/jobs">Clear</a></form>`
}

const bulkBar = (view: View, query: JobsQuery, total: JobCount | undefined, selectable: boolean): Html => {
  if (!selectable) return html``
  const actionsHere = (["retry", "cancel", "delete"] as const).filter((name) =>
    can(view, `job.${name}` as const),
  )
  const onMatching = (["retry", "cancel", "discard", "delete"] as const).filter((name) =>
    can(view, `job.${name}` as const),
  )
  return html`<form id="bulk" method="post" action="${view.prefix}/actions/jobs.bulk" class="bulk">
<input type="hidden" name="_csrf" value="${view.csrf}"><input type="hidden" name="back" value="${view.here}">
${(["state", ...textFields] as const).map((name) => {
  const value = name === "state" ? (query.state ?? "") : query[name]
  return value === "" ? "" : html`<input type="hidden" name="filter.${name}" value="${value}">`
})}
<span class="muted">Selected jobs:</span>
${actionsHere.map((name) => html`<button type="submit" name="do" value="${name}:selected" data-action="bulk-${name}-selected">${name}</button> `)}
${
  total === undefined
    ? ""
    : html`<span class="muted">All ${count(total.count, total.estimated)} matching:</span>
${onMatching.map(
  (name) =>
    html`<button type="submit" name="do" value="${name}:matching" class="${name === "retry" ? "" : "danger"}" data-action="bulk-${name}-matching" data-confirm="${`${name} every job matching this filter?`}">${name} all</button> `,
)}`
}</form>`
}

const tabCountBound = 1000

export const jobsPage = (sources: Sources, view: View, pageSize: number) =>
  Effect.gen(function* () {
    const query = readQuery(view.query)
    const queueNames = Effect.map(sources.client.listQueues, (list) => list.map((queue) => queue.name))
    const filter = toFilter(query)
    if (Either.isLeft(filter)) {
      const queues = yield* queueNames
      const body = html`<h1>Jobs</h1>${filterForm(view, query, queues)}<p class="notice problem" role="alert">${filter.left}</p>`
      return layout(view, "Jobs", "Jobs", body)
    }
    const { state: _state, ...withoutState } = filter.right
    // The queue list (for the filter's choices) is read beside the counts and the page.
    const [queues, counts, page, total] = yield* Effect.all(
      [
        queueNames,
        // Counts are read up to a bound a page can afford eight times over, however large the
        // table; past it, the planner's estimate.
        Effect.forEach(
          states,
          (state) => sources.client.count({ ...withoutState, state }, { exactUpTo: tabCountBound }),
          { concurrency: 2 },
        ),
        sources.client.listPage({ ...filter.right, limit: pageSize, cursor: query.cursor }),
        Object.keys(filter.right).some((key) => filter.right[key as keyof JobFilter.Filter] !== undefined)
          ? Effect.map(
              sources.client.count(filter.right, { exactUpTo: tabCountBound }),
              (found): JobCount | undefined => found,
            )
          : Effect.succeed(undefined),
      ],
      { concurrency: 4 },
    )
    const selectable = view.access.level === "full"
    const body = html`<h1>Jobs</h1>
<nav class="tabs">${[undefined, ...states].map((state, index) => {
      const found = index === 0 ? undefined : counts[index - 1]!
      return html`<a href="${view.prefix}/jobs${queryString(query, { state, cursor: undefined })}"${
        query.state === state ? html` aria-current="page"` : html``
      }>${state ?? "all"}${found === undefined ? "" : html` <span class="count">${count(found.count, found.estimated)}</span>`}</a>`
    })}</nav>
${filterForm(view, query, queues)}
${bulkBar(view, query, total, selectable)}
${
  page.jobs.length === 0
    ? html`<p class="empty">No job matches.</p>`
    : html`<div class="scroll"><table class="grid rows" id="jobs"><thead><tr>${selectable ? html`<th></th>` : ""}<th class="num">Id</th><th>State</th><th>Type</th><th>Queue</th><th class="num">Attempt</th><th>Inserted</th><th>Last error</th></tr></thead>
<tbody>${page.jobs.map((job) => jobRow(view, job, selectable))}</tbody></table></div>`
}
<nav class="pager">${
      query.cursor === undefined
        ? ""
        : html`<a href="${view.prefix}/jobs${queryString(query, { cursor: undefined })}">⇤ Newest</a>`
    }${page.next === null ? "" : html`<a rel="next" href="${view.prefix}/jobs${queryString(query, { cursor: page.next })}">Older →</a>`}</nav>`
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

interface Moment {
  readonly at: Date
  readonly what: Html
  readonly state?: JobState | undefined
}

/**
 * The job's life from what its row holds: inserted, each failed attempt, the last attempt's
 * start, and where it stands now (finished, or due next). An attempt that failed before the
 * last one is known by its error alone: the row keeps only the last attempt's start.
 */
const timeline = (view: View, job: JobRecord): Html => {
  const moments: Array<Moment> = [{ at: job.insertedAt, what: html`Inserted into ${job.queue}` }]
  if (job.scheduledAt.getTime() - job.insertedAt.getTime() > 1000 && job.errors.length === 0)
    moments.push({ at: job.scheduledAt, what: html`Due`, state: "scheduled" })
  for (const error of job.errors)
    moments.push({
      at: error.at,
      what: html`Attempt ${error.attempt} failed: <span class="error-text">${error.tag}: ${error.message}</span>`,
      state: "retryable",
    })
  if (job.attemptedAt !== null)
    moments.push({
      at: job.attemptedAt,
      what: html`Attempt ${job.attempt} started${job.attemptedBy === null ? "" : ` on ${job.attemptedBy}`}`,
      state: "executing",
    })
  const end =
    job.completedAt !== null
      ? ({ at: job.completedAt, what: html`Completed`, state: "completed" } as const)
      : job.discardedAt !== null
        ? ({ at: job.discardedAt, what: html`Discarded`, state: "discarded" } as const)
        : job.cancelledAt !== null
          ? ({ at: job.cancelledAt, what: html`Cancelled`, state: "cancelled" } as const)
          : undefined
  if (end !== undefined) moments.push(end)
  else if (job.state === "retryable" || (job.state === "scheduled" && job.errors.length > 0))
    moments.push({ at: job.scheduledAt, what: html`Next attempt due`, state: job.state })
  else if (job.state === "available")
    moments.push({ at: job.scheduledAt, what: html`Waiting to run`, state: "available" })
  // Stable: moments of one instant keep the order of the job's life.
  const sorted = moments
    .map((m, i) => [m, i] as const)
    .sort(([a, i], [b, j]) => a.at.getTime() - b.at.getTime() || i - j)
  return html`<ol class="timeline">${sorted.map(
    ([moment]) =>
      html`<li${moment.state === undefined ? "" : html` class="state-${moment.state}"`}>${time(moment.at, view.now)} ${moment.what}</li>`,
  )}</ol>`
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

/** What the handler reported: its last progress and the job's log, both as text the page escapes. */
const reports = (job: JobRecord, now: number): Html => {
  const progress = job.progress
  return html`<section id="progress"><h2>Progress</h2>${
    progress === null
      ? html`<p class="muted">None reported.</p>`
      : html`<p><progress max="100" value="${progress.percent}">${progress.percent} %</progress> <strong>${progress.percent} %</strong>${
          progress.note === null ? "" : html` · <span class="note">${progress.note}</span>`
        } <span class="muted">(attempt ${progress.attempt}, ${time(progress.at, now)})</span></p>`
  }</section>
<section id="log"><h2>Log</h2>${
    job.logs.length === 0
      ? html`<p class="muted">No lines.</p>`
      : html`<div class="scroll"><table class="grid"><thead><tr><th class="num">Attempt</th><th>At</th><th>Line</th></tr></thead><tbody>${job.logs.map(
          (line) =>
            html`<tr><td class="num">${line.attempt}</td><td>${time(line.at, now)}</td><td><pre>${line.message}</pre></td></tr>`,
        )}</tbody></table></div>`
  }</section>`
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
<dt>Rescues</dt><dd>${job.rescues}</dd><dt>Node</dt><dd>${job.attemptedBy === null ? "—" : html`<a href="${view.prefix}/jobs?node=${encodeURIComponent(job.attemptedBy)}">${job.attemptedBy}</a>`}</dd>
${job.resourceType === null ? "" : html`<dt>Resource</dt><dd><a href="${view.prefix}/jobs?resource=${encodeURIComponent(`${job.resourceType}:${job.resourceId ?? ""}`)}">${job.resourceType} ${job.resourceId}</a> (its jobs)</dd>`}
${typeof job.meta.schedule === "string" ? html`<dt>Schedule</dt><dd><a href="${view.prefix}/schedules#schedule-${job.meta.schedule}">${job.meta.schedule}</a> · <a href="${view.prefix}/jobs?schedule=${encodeURIComponent(job.meta.schedule)}">its jobs</a></dd>` : ""}
</dl></section><section><h2>Timings</h2>${timings(job, view.now)}</section></div>
<section><h2>Timeline</h2>${timeline(view, job)}</section>
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
${reports(job, view.now)}
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
