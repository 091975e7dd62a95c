/**
 * The frame every page shares: navigation, theme switch, notices, and the data the browser
 * script reads (where the live events are).
 */
import { type Html, html } from "./html.js"
import type { Access, Action } from "./options.js"

/** What a page knows about the request it answers. */
export interface View {
  readonly prefix: string
  readonly access: Access
  /** The token every form posts back. */
  readonly csrf: string
  /** The database's time, in epoch milliseconds. */
  readonly now: number
  /** The path and query of this page, for forms to come back to. */
  readonly here: string
  readonly query: URLSearchParams
}

export const can = (view: View, action: Action): boolean =>
  view.access.level === "full" && (view.access.actions === undefined || view.access.actions.includes(action))

/** A POST form with the CSRF token, coming back to this page; nothing when the action is not allowed. */
export const actionForm = (
  view: View,
  action: Action,
  fields: Readonly<Record<string, string | number>>,
  label: string,
  options: { readonly danger?: boolean; readonly confirm?: string; readonly extra?: Html } = {},
): Html => {
  if (!can(view, action)) return html``
  return html`<form method="post" action="${view.prefix}/actions/${action}" class="inline">
<input type="hidden" name="_csrf" value="${view.csrf}"><input type="hidden" name="back" value="${view.here}">
${Object.entries(fields).map(([name, value]) => html`<input type="hidden" name="${name}" value="${String(value)}">`)}
${options.extra}<button type="submit" class="${options.danger ? "danger" : ""}" data-action="${action}"${
    options.confirm === undefined ? html`` : html` data-confirm="${options.confirm}"`
  }>${label}</button></form>`
}

const pages = [
  ["", "Overview", "o"],
  ["/jobs", "Jobs", "j"],
  ["/failures", "Failures", "f"],
  ["/queues", "Queues", "q"],
  ["/schedules", "Schedules", "s"],
  ["/tasks", "Tasks", "t"],
] as const

export const layout = (view: View, title: string, current: string, body: Html): Html => {
  const notice = view.query.get("notice")
  const problem = view.query.get("problem")
  const readOnly = view.access.level === "read-only"
  return html`<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${title} · effect-jobs</title>
<link rel="icon" href="data:,"><link rel="stylesheet" href="${view.prefix}/assets/app.css">
<script src="${view.prefix}/assets/app.js" defer></script>
</head><body data-prefix="${view.prefix}">
<header class="top"><a class="brand" href="${view.prefix}/">effect-jobs</a>
<nav>${pages.map(
    ([path, name, key]) =>
      html`<a href="${view.prefix}${path || "/"}" data-key="${key}"${
        current === name ? html` aria-current="page"` : html``
      }>${name}</a>`,
  )}</nav>
<span class="spacer"></span>${readOnly ? html`<span class="badge">read-only</span>` : html``}
<span class="live" id="live" title="live updates">●</span>
<button type="button" id="theme" title="Switch theme (d)">◐</button>
<button type="button" id="help" title="Keyboard shortcuts (?)">?</button></header>
<main id="main" data-title="${title}">
${notice === null ? html`` : html`<p class="notice" role="status">${notice}</p>`}
${problem === null ? html`` : html`<p class="notice problem" role="alert">${problem}</p>`}
${body}
</main>
<dialog id="keys"><h2>Keyboard</h2><dl>
<dt>g o, g j, g f, g q, g s, g t</dt><dd>Overview, Jobs, Failures, Queues, Schedules, Tasks</dd>
<dt>/</dt><dd>Filter the jobs</dd><dt>j / k</dt><dd>Next / previous row</dd>
<dt>Enter</dt><dd>Open the row</dd><dt>d</dt><dd>Dark or light theme</dd><dt>?</dt><dd>This help</dd>
</dl><form method="dialog"><button>Close</button></form></dialog>
</body></html>`
}
