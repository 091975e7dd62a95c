/**
 * Line charts as inline SVG, drawn on the server: no script and no library. Colours come from
 * the style sheet's classes, so a chart follows the dark or light theme like the rest.
 */
import { type Html, html } from "./html.js"

export interface Series {
  readonly name: string
  /** The class that colours it: `series-<kind>`. */
  readonly kind: string
  /** One value a point; null where there is none (a gap in the line). */
  readonly values: ReadonlyArray<number | null>
}

export interface ChartOptions {
  readonly title: string
  readonly series: ReadonlyArray<Series>
  /** The start of the first point, and the span of each (epoch ms). */
  readonly start: number
  readonly stepMillis: number
  /** `log` for durations, which spread over orders of magnitude. Defaults to linear from zero. */
  readonly scale?: "linear" | "log"
  readonly format: (value: number) => string
}

const width = 640
const height = 170
const left = 58
const right = 8
const top = 8
const bottom = 20
const plotWidth = width - left - right
const plotHeight = height - top - bottom

/** 1, 2 or 5 times a power of ten, at or above `value`. */
const niceCeiling = (value: number) => {
  if (value <= 0) return 1
  const power = 10 ** Math.floor(Math.log10(value))
  const step = [1, 2, 5, 10].find((m) => m * power >= value) ?? 10
  return step * power
}

/** The y-axis: where a value goes, and the ticks to label. */
const yAxis = (values: ReadonlyArray<number>, scale: "linear" | "log") => {
  if (scale === "log") {
    const positive = values.filter((v) => v > 0)
    const low = positive.length === 0 ? 1 : 10 ** Math.floor(Math.log10(Math.min(...positive)))
    const high = 10 ** Math.ceil(Math.log10(Math.max(...positive, low * 10)))
    const span = Math.log10(high) - Math.log10(low)
    const ticks: Array<number> = []
    for (let tick = low; tick <= high * 1.0001; tick *= 10) ticks.push(tick)
    const y = (v: number) =>
      top + plotHeight - ((Math.log10(Math.max(v, low)) - Math.log10(low)) / span) * plotHeight
    return { y, ticks }
  }
  const max = niceCeiling(Math.max(0, ...values))
  const y = (v: number) => top + plotHeight - (v / max) * plotHeight
  return { y, ticks: [0, max / 2, max] }
}

const pad = (n: number) => String(n).padStart(2, "0")
const months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]

/** A time on the x-axis, in UTC: the hour over a day, the date over longer spans. */
const timeLabel = (millis: number, span: number) => {
  const date = new Date(millis)
  return span <= 2 * 86_400_000
    ? `${pad(date.getUTCHours())}:${pad(date.getUTCMinutes())}`
    : `${months[date.getUTCMonth()]} ${date.getUTCDate()}`
}

/** The SVG path of one series: a line through its points, broken where a value is missing. */
const pathOf = (values: ReadonlyArray<number | null>, x: (i: number) => number, y: (v: number) => number) => {
  let d = ""
  let drawing = false
  for (const [i, value] of values.entries()) {
    if (value === null) {
      drawing = false
      continue
    }
    d += `${drawing ? "L" : "M"}${x(i).toFixed(1)} ${y(value).toFixed(1)}`
    drawing = true
  }
  return d
}

export const lineChart = (options: ChartOptions): Html => {
  const count = Math.max(1, ...options.series.map((s) => s.values.length))
  const all = options.series.flatMap((s) => s.values.filter((v): v is number => v !== null))
  const { y, ticks } = yAxis(all, options.scale ?? "linear")
  const x = (i: number) => left + (count <= 1 ? 0 : (i / (count - 1)) * plotWidth)
  const span = count * options.stepMillis
  const xTicks = [0, 0.25, 0.5, 0.75, 1].map((f) => Math.round(f * (count - 1)))
  const empty = all.length === 0 || all.every((v) => v === 0)
  return html`<figure class="chart"><figcaption>${options.title}${
    empty ? html` <span class="muted">(nothing finished)</span>` : ""
  }</figcaption>
<svg viewBox="0 0 ${width} ${height}" role="img" aria-label="${options.title}">
<g class="axis">${ticks.map(
    (tick) =>
      html`<line x1="${left}" x2="${width - right}" y1="${y(tick).toFixed(1)}" y2="${y(tick).toFixed(1)}"></line><text x="${left - 4}" y="${(y(tick) + 3).toFixed(1)}" text-anchor="end">${options.format(tick)}</text>`,
  )}${xTicks.map(
    (i) =>
      html`<text x="${x(i).toFixed(1)}" y="${height - 5}" text-anchor="${i === 0 ? "start" : i === count - 1 ? "end" : "middle"}">${timeLabel(options.start + i * options.stepMillis, span)}</text>`,
  )}</g>
${options.series.map(
  (series) =>
    html`<path class="line series-${series.kind}" d="${pathOf(series.values, x, y)}"><title>${series.name}</title></path>`,
)}
</svg>
<p class="legend">${options.series.map(
    (series) =>
      html`<span class="key"><span class="swatch series-${series.kind}"></span>${series.name}</span> `,
  )}</p></figure>`
}
