/**
 * HTML as typed values. Every page is built with the `html` template: an interpolated value is
 * escaped unless it is itself `Html`, so text from jobs (args, meta, errors, types, all of
 * which anyone who can insert a job controls) never becomes markup.
 */

const htmlBrand: unique symbol = Symbol.for("effect-jobs/dashboard/Html")

export interface Html {
  readonly [htmlBrand]: true
  readonly value: string
}

const trusted = (value: string): Html => ({ [htmlBrand]: true, value })

const isHtml = (value: unknown): value is Html =>
  typeof value === "object" && value !== null && htmlBrand in value

const replacements: Record<string, string> = {
  "&": "&amp;",
  "<": "&lt;",
  ">": "&gt;",
  '"': "&quot;",
  "'": "&#39;",
  "`": "&#96;",
}

/** The one escaping function: safe in text and in quoted attribute values. */
export const escapeText = (text: string): string => text.replace(/[&<>"'`]/g, (char) => replacements[char]!)

export type Interpolated = Html | string | number | boolean | null | undefined | ReadonlyArray<Interpolated>

const render = (value: Interpolated): string => {
  if (value === null || value === undefined || value === false) return ""
  if (Array.isArray(value)) return value.map(render).join("")
  if (isHtml(value)) return value.value
  return escapeText(String(value))
}

/** A template whose interpolations are escaped; arrays are joined, `null`, `undefined` and `false` vanish. */
export const html = (strings: TemplateStringsArray, ...values: ReadonlyArray<Interpolated>): Html => {
  let out = strings[0]!
  for (let i = 0; i < values.length; i++) out += render(values[i]!) + strings[i + 1]!
  return trusted(out)
}

export const text = (value: Html): string => value.value

/** A value shown as indented JSON text. */
export const json = (value: unknown): Html => {
  let text: string
  try {
    text = JSON.stringify(value, null, 2) ?? "undefined"
  } catch {
    text = String(value)
  }
  return html`<pre class="json">${text}</pre>`
}

const units: ReadonlyArray<readonly [number, string]> = [
  [86_400_000, "d"],
  [3_600_000, "h"],
  [60_000, "m"],
  [1000, "s"],
]

/** `3m 12s`: the two largest units of a duration. */
export const duration = (millis: number): string => {
  const sign = millis < 0 ? "-" : ""
  let rest = Math.abs(Math.round(millis))
  if (rest < 1000) return `${sign}${rest}ms`
  const parts: Array<string> = []
  for (const [size, unit] of units) {
    if (rest >= size && parts.length < 2) {
      parts.push(`${Math.floor(rest / size)}${unit}`)
      rest %= size
    } else if (parts.length > 0) break
  }
  return sign + parts.join(" ")
}

/** A time as UTC text, with how long ago (or ahead) it is beside it. */
export const time = (date: Date | null, now: number): Html => {
  if (date === null) return html`<span class="muted">—</span>`
  const iso = date.toISOString()
  const delta = now - date.getTime()
  const relative = delta >= 0 ? `${duration(delta)} ago` : `in ${duration(-delta)}`
  return html`<time datetime="${iso}" title="${iso}">${relative}</time>`
}

/** A whole number with thousands separators, or `~n` when it is an estimate. */
export const count = (n: number, estimate = false): Html =>
  estimate
    ? html`<span class="estimate" title="estimated">~${n.toLocaleString("en-US")}</span>`
    : html`${n.toLocaleString("en-US")}`
