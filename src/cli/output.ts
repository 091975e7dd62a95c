/**
 * What the command line prints: JSON with `--json`, aligned tables otherwise. Colour is always
 * written here and taken out by the console of `main.ts` where the stream is not a terminal (or
 * `NO_COLOR` is set), as it is from the help that @effect/cli prints.
 */
import { Console, type Effect } from "effect"

const paint = (code: number) => (text: string) => `\u001b[${code}m${text}\u001b[0m`
export const bold = paint(1)
export const dim = paint(2)
export const red = paint(31)
export const green = paint(32)
export const yellow = paint(33)
export const cyan = paint(36)

/** A job or task state, coloured by what it asks of a person. */
export const state = (name: string): string => {
  switch (name) {
    case "completed":
    case "success":
    case "ok":
      return green(name)
    case "discarded":
    case "failure":
    case "defect":
    case "problem":
      return red(name)
    case "retryable":
    case "cancelled":
    case "warning":
    case "interrupted":
      return yellow(name)
    case "executing":
    case "running":
      return cyan(name)
    default:
      return name
  }
}

/** The escape codes that colour text. */
export const ansiCodes = new RegExp(`${String.fromCharCode(27)}\\[[0-9;]*m`, "g")

// Escape codes take no room on the screen: widths are measured without them.
const visibleLength = (text: string) => text.replace(ansiCodes, "").length

export type Cell = string | number | boolean | Date | null | undefined

export const cell = (value: Cell): string => {
  if (value === null || value === undefined) return "-"
  if (value instanceof Date) return value.toISOString().replace(/\.\d{3}Z$/, "Z")
  return String(value)
}

/** An aligned table with a header row; `(none)` when there are no rows. */
export const table = (headers: ReadonlyArray<string>, rows: ReadonlyArray<ReadonlyArray<string>>): string => {
  if (rows.length === 0) return dim("(none)")
  const widths = headers.map((header, i) =>
    Math.max(header.length, ...rows.map((row) => visibleLength(row[i] ?? ""))),
  )
  const line = (cells: ReadonlyArray<string>) =>
    cells
      .map((text, i) => (i === cells.length - 1 ? text : text + " ".repeat(widths[i]! - visibleLength(text))))
      .join("  ")
  return [bold(line(headers.map((header) => header.toUpperCase()))), ...rows.map(line)].join("\n")
}

/** Label and value pairs, one a line, the labels aligned. */
export const fields = (pairs: ReadonlyArray<readonly [string, string]>): string => {
  const width = Math.max(...pairs.map(([label]) => label.length))
  return pairs.map(([label, value]) => `${bold(label.padEnd(width))}  ${value}`).join("\n")
}

/** JSON for machines: dates as ISO strings. */
export const json = (value: unknown): string => JSON.stringify(value, null, 2)

/** Prints `value` as JSON with `--json`, and `text()` otherwise. */
export const print = (asJson: boolean, value: unknown, text: () => string): Effect.Effect<void> =>
  Console.log(asJson ? json(value) : text())
