/** Failed jobs grouped by their error, and the progress of a bulk action. */
import { Effect } from "effect"
import type * as Jobs from "../../Jobs.js"
import type { BulkRun } from "../bulk.js"
import type { Sources } from "../data.js"
import { count, duration, type Html, html, time } from "../html.js"
import { can, layout, type View } from "../layout.js"

const groupQuery = (group: Jobs.FailureGroup) =>
  new URLSearchParams({ errorTag: group.tag, errorPattern: group.pattern }).toString()

/** A bulk action on every job of the group, from this page. */
const groupAction = (view: View, group: Jobs.FailureGroup, verb: "retry" | "discard", label: string) =>
  can(view, `job.${verb}`)
    ? html`<form method="post" action="${view.prefix}/actions/jobs.bulk" class="inline">
<input type="hidden" name="_csrf" value="${view.csrf}"><input type="hidden" name="back" value="${view.here}">
<input type="hidden" name="filter.errorTag" value="${group.tag}"><input type="hidden" name="filter.errorPattern" value="${group.pattern}">
<button type="submit" name="do" value="${verb}:matching" class="${verb === "discard" ? "danger" : ""}" data-action="group-${verb}" data-confirm="${`${label} every job of this group?`}">${label}</button></form>`
    : html``

export const failuresPage = (sources: Sources, view: View) =>
  Effect.gen(function* () {
    const { groups, partial } = yield* sources.client.failureGroups()
    const body = html`<h1>Failures</h1>
<p class="muted">Retryable and discarded jobs grouped by their last error: its tag, and its message with numbers written N and UUIDs &lt;uuid&gt;.${
      partial ? " Counted over the newest 5,000 failed jobs; an action acts on every job of the group." : ""
    }</p>
${
  groups.length === 0
    ? html`<p class="empty">No job has failed.</p>`
    : html`<div class="scroll"><table class="grid rows" id="failures"><thead><tr><th>Error</th><th class="num">Retryable</th><th class="num">Discarded</th><th>Last</th><th></th></tr></thead><tbody>${groups.map(
        (
          group,
        ) => html`<tr data-href="${view.prefix}/jobs?${groupQuery(group)}"><td><span class="badge">${group.tag || "—"}</span>
<a class="error-text pattern" href="${view.prefix}/jobs?${groupQuery(group)}">${group.pattern}</a>
<div class="muted">e.g. <a href="${view.prefix}/jobs/${group.exampleId}">job ${group.exampleId}</a>: <span class="error-text">${group.example}</span></div></td>
<td class="num">${count(group.retryable)}</td><td class="num">${count(group.discarded)}</td><td>${time(group.lastAt, view.now)}</td>
<td class="actions">${groupAction(view, group, "retry", "Retry all")}${group.retryable > 0 ? groupAction(view, group, "discard", "Discard the retryable") : ""}</td></tr>`,
      )}</tbody></table></div>`
}`
    return layout(view, "Failures", "Failures", body)
  })

const pastTense = { retry: "retried", cancel: "cancelled", discard: "discarded", delete: "deleted" } as const

/** A bulk action's progress: refreshed by the live updates after every batch. */
export const bulkPage = (view: View, run: BulkRun): Html => {
  const { total, progress, outcome } = run
  const max = Math.max(total.count, progress.selected, 1)
  const status =
    outcome._tag === "running"
      ? html`Running: ${count(progress.selected)} of ${count(total.count, total.estimated)} looked at, ${count(progress.changed)} ${pastTense[run.verb]}.`
      : outcome._tag === "done"
        ? html`Done: ${count(progress.changed)} jobs ${pastTense[run.verb]} in ${duration(outcome.at - run.startedAt)}.`
        : html`Stopped after ${count(progress.changed)} jobs ${pastTense[run.verb]}: ${outcome.message}`
  const body = html`<p><a href="${run.back}">← Back</a></p>
<h1>${run.verb[0]!.toUpperCase()}${run.verb.slice(1)} ${run.target}</h1>
<progress id="bulk-progress" max="${max}" value="${outcome._tag === "done" ? max : progress.selected}"></progress>
<p class="bulk-status ${outcome._tag}" role="status">${status}</p>
<p class="muted">Started ${time(new Date(run.startedAt), view.now)}. Jobs that moved on meanwhile (finished, or started running) are left as they are.</p>`
  return layout(view, "Bulk action", "Jobs", body)
}
