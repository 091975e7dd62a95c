/**
 * A cron expression in words ("At 03:00, on Monday through Friday"), from the fields as
 * `effect/Cron` parses them (five fields, or six with seconds first), so the words say what
 * the schedule will do, whatever way the expression was written.
 */
import { Cron, Either } from "effect"

const weekdayNames = ["Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"]
const monthNames = [
  "January",
  "February",
  "March",
  "April",
  "May",
  "June",
  "July",
  "August",
  "September",
  "October",
  "November",
  "December",
]

const pad = (n: number) => String(n).padStart(2, "0")

/** `a`, `a and b`, `a, b and c`. */
const list = (words: ReadonlyArray<string>) =>
  words.length <= 1 ? (words[0] ?? "") : `${words.slice(0, -1).join(", ")} and ${words.at(-1)}`

/** How a field's values run: every value, a step from the first, one range, or a list. */
type Shape =
  | { readonly _tag: "every" }
  | { readonly _tag: "step"; readonly step: number }
  | { readonly _tag: "one"; readonly value: number }
  | { readonly _tag: "range"; readonly from: number; readonly to: number }
  | { readonly _tag: "list"; readonly values: ReadonlyArray<number> }

const shapeOf = (set: ReadonlySet<number>, first: number, last: number): Shape => {
  const values = Array.from(set).sort((a, b) => a - b)
  if (values.length === 0 || values.length === last - first + 1) return { _tag: "every" }
  if (values.length === 1) return { _tag: "one", value: values[0]! }
  const step = values[1]! - values[0]!
  const even = values.every((v, i) => i === 0 || v - values[i - 1]! === step)
  if (even && step === 1) return { _tag: "range", from: values[0]!, to: values.at(-1)! }
  // `*/15`: a step from the field's first value to its end.
  if (even && values[0] === first && values.at(-1)! + step > last) return { _tag: "step", step }
  return { _tag: "list", values }
}

const ordinal = (n: number) => (n === 2 ? "2nd" : n === 3 ? "3rd" : `${n}th`)

/** Seconds and minutes: `every 15 minutes`, `at minute 5`, `at minutes 5 and 35`. */
const within = (shape: Shape, unit: string): string => {
  switch (shape._tag) {
    case "every":
      return `every ${unit}`
    case "step":
      return `every ${shape.step} ${unit}s`
    case "one":
      return `at ${unit} ${shape.value}`
    case "range":
      return `at ${unit}s ${shape.from} through ${shape.to}`
    case "list":
      return `at ${unit}s ${list(shape.values.map(String))}`
  }
}

/**
 * The time of day: `at 03:00` (`fixed`: at set times of the day), or `every 15 minutes`,
 * `at minute 30 of every 2nd hour`.
 */
const timeOfDay = (cron: Cron.Cron): { readonly text: string; readonly fixed: boolean } => {
  const seconds = shapeOf(cron.seconds, 0, 59)
  const minutes = shapeOf(cron.minutes, 0, 59)
  const hours = shapeOf(cron.hours, 0, 23)
  if (seconds._tag === "one" && minutes._tag === "one" && (hours._tag === "one" || hours._tag === "list")) {
    const hourValues = hours._tag === "one" ? [hours.value] : hours.values
    const clock = (h: number) =>
      `${pad(h)}:${pad(minutes.value)}${seconds.value === 0 ? "" : `:${pad(seconds.value)}`}`
    if (hourValues.length <= 6) return { text: `at ${list(hourValues.map(clock))}`, fixed: true }
  }
  const secondsPart = seconds._tag === "one" && seconds.value === 0 ? "" : within(seconds, "second")
  const onTheHour = minutes._tag === "one" && minutes.value === 0 && secondsPart === ""
  const minutePart =
    minutes._tag === "every" ? (secondsPart === "" ? "every minute" : "") : within(minutes, "minute")
  const hourPart =
    hours._tag === "every"
      ? minutes._tag === "one"
        ? "of every hour"
        : ""
      : hours._tag === "step"
        ? `of every ${ordinal(hours.step)} hour`
        : hours._tag === "one"
          ? `from ${pad(hours.value)}:00 to ${pad(hours.value)}:59`
          : hours._tag === "range"
            ? `from ${pad(hours.from)}:00 to ${pad(hours.to)}:59`
            : `during hours ${list(hours.values.map(pad))}`
  if (onTheHour) {
    const text =
      hours._tag === "every"
        ? "every hour, on the hour"
        : hours._tag === "step"
          ? `every ${hours.step} hours, on the hour`
          : `on the hour ${hourPart.replace(":59", ":00")}`
    return { text, fixed: false }
  }
  const parts = [secondsPart, [minutePart, hourPart].filter((part) => part !== "").join(" ")]
  return { text: parts.filter((part) => part !== "").join(", "), fixed: false }
}

const named = (shape: Shape, names: ReadonlyArray<string>, offset = 0): string => {
  const name = (n: number) => names[n - offset] ?? String(n)
  switch (shape._tag) {
    case "every":
      return ""
    case "one":
      return name(shape.value)
    case "range":
      return `${name(shape.from)} through ${name(shape.to)}`
    case "step":
    case "list": {
      const values =
        shape._tag === "list"
          ? shape.values
          : Array.from({ length: names.length }, (_, i) => i + offset).filter(
              (v) => (v - offset) % shape.step === 0,
            )
      return list(values.map(name))
    }
  }
}

const dayOfMonth = (shape: Shape): string => {
  switch (shape._tag) {
    case "every":
      return ""
    case "one":
      return `on day ${shape.value} of the month`
    case "range":
      return `on days ${shape.from} through ${shape.to} of the month`
    case "step":
      return `on every ${ordinal(shape.step)} day of the month`
    case "list":
      return `on days ${list(shape.values.map(String))} of the month`
  }
}

/** The days: `every day`, `on Monday through Friday`, `on day 1 of the month`, `in January`. */
const calendar = (cron: Cron.Cron): string => {
  const days = dayOfMonth(shapeOf(cron.days, 1, 31))
  const weekdays = named(shapeOf(cron.weekdays, 0, 6), weekdayNames)
  const months = named(shapeOf(cron.months, 1, 12), monthNames, 1)
  // Cron's rule: with both restricted, either kind of day matches, unless one was written as a
  // step of `*` (the parser's `and`, which it keeps on the value).
  const both = (cron as unknown as { readonly and?: boolean }).and === true ? "and" : "or"
  const dayPart =
    days !== "" && weekdays !== ""
      ? `${days} ${both} on ${weekdays}`
      : days !== ""
        ? days
        : weekdays !== ""
          ? `on ${weekdays}`
          : months === ""
            ? "every day"
            : ""
  return [dayPart, months === "" ? "" : `in ${months}`].filter((part) => part !== "").join(", ")
}

/** The expression in words, or undefined when it does not parse. */
export const describe = (expression: string): string | undefined => {
  const parsed = Cron.parse(expression)
  if (Either.isLeft(parsed)) return undefined
  const cron = parsed.right
  const time = timeOfDay(cron)
  const days = calendar(cron)
  // "Every minute, every day" says the same as "Every minute".
  const text = days === "every day" && !time.fixed ? time.text : `${time.text}, ${days}`
  return text.charAt(0).toUpperCase() + text.slice(1)
}
