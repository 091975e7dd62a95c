/**
 * JSON as the jobs table stores it. Two gaps lie between a JS value and a jsonb column:
 *
 * - JSON.stringify changes some values without a word: NaN and ±Infinity become null, and
 *   so do undefined, functions and symbols in an array (elsewhere they are dropped); a Date
 *   becomes a string, a Map `{}`.
 * - PostgreSQL refuses some text JSON can carry: the NUL character (`\u0000`) and lone
 *   surrogates, which JSON.stringify writes as escapes (`\ud800`).
 *
 * Args and meta that would not come back as they went in are refused at insert (`change`);
 * outcomes, which nobody can correct by then, are made storable instead (`storable`).
 */

// In JSON text a backslash appears only inside a string, where it starts an escape. Scanning
// escapes from the left, an escaped backslash (`\\`) is consumed whole, so that the text
// `\\u0000` (a backslash, then "u0000") is never taken for the escape of a NUL. JSON.stringify
// writes a paired surrogate as the character itself, so every surrogate escape it writes
// stands alone.
const escapes = /\\\\|\\u0000|\\ud[89a-f][0-9a-f]{2}/gi

/** Whether PostgreSQL would refuse text in this JSON (written by JSON.stringify). */
export const refusedText = (json: string): boolean => {
  // Almost all JSON has no \u escape at all: then there is nothing to look for.
  if (!json.includes("\\u")) return false
  for (const [found] of json.matchAll(escapes)) if (found !== "\\\\") return true
  return false
}

/** The JSON with each NUL and each lone surrogate replaced by U+FFFD, the replacement character. */
export const storable = (json: string): string =>
  json.includes("\\u") ? json.replace(escapes, (found) => (found === "\\\\" ? found : "\uFFFD")) : json

const identifier = /^[A-Za-z_$][A-Za-z0-9_$]*$/

const member = (path: string, key: string | number): string =>
  typeof key === "number"
    ? `${path}[${key}]`
    : identifier.test(key)
      ? `${path}.${key}`
      : `${path}[${JSON.stringify(key)}]`

const loneSurrogate = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/

const textProblem = (text: string): string | undefined =>
  text.includes("\u0000")
    ? "a NUL character, which PostgreSQL cannot store"
    : loneSurrogate.test(text)
      ? "a lone surrogate (half of a UTF-16 pair), which PostgreSQL cannot store"
      : undefined

/** What changes, and where: the keys from the value found back up to the root. */
interface Found {
  readonly problem: (path: string) => string
  readonly keys: Array<string | number>
}

const found = (problem: (path: string) => string): Found => ({ problem, keys: [] })

// The path is put together only for a value that changes: on the insert path, building it
// for every value cost more than the walk.
const walk = (value: unknown, text: boolean, inArray: boolean): Found | undefined => {
  switch (typeof value) {
    case "string": {
      const problem = text ? textProblem(value) : undefined
      return problem === undefined ? undefined : found((path) => `${path} holds ${problem}`)
    }
    case "number":
      return Number.isFinite(value)
        ? undefined
        : found((path) => `${path} is ${value}, which JSON cannot carry (it would be stored as null)`)
    case "boolean":
      return undefined
    case "undefined":
      // A property that is undefined is left out, and reads back as absent: no change.
      return inArray
        ? found((path) => `${path} is undefined, which JSON stores as null in an array`)
        : undefined
    case "function":
    case "symbol":
    case "bigint":
      return found((path) => `${path} is a ${typeof value}, which JSON cannot carry`)
  }
  if (value === null || typeof value !== "object") return undefined
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const inner = walk(value[i], text, true)
      if (inner !== undefined) {
        inner.keys.push(i)
        return inner
      }
    }
    return undefined
  }
  const prototype = Object.getPrototypeOf(value)
  if ((prototype !== Object.prototype && prototype !== null) || typeof (value as any).toJSON === "function") {
    const name = (value as object).constructor?.name || "object"
    return found(
      (path) =>
        `${path} is a ${name}, which JSON does not carry as it is: encode it to plain data with a Schema (Schema.Date for a Date)`,
    )
  }
  for (const key in value) {
    if (!Object.hasOwn(value, key)) continue
    const keyProblem = text ? textProblem(key) : undefined
    if (keyProblem !== undefined) return found((path) => `${path} has a key holding ${keyProblem}`)
    const inner = walk((value as Record<string, unknown>)[key], text, false)
    if (inner !== undefined) {
      inner.keys.push(key)
      return inner
    }
  }
  return undefined
}

/**
 * Where `value` would not come back from the jobs table as it went in, said in a sentence
 * that names the path from `root`; undefined when it would. `text` asks for strings (and
 * keys) to be checked too: worth it only when `refusedText` found something. Run only on a
 * value JSON.stringify accepted, so it holds no cycle.
 */
export const change = (value: unknown, root: string, text: boolean): string | undefined => {
  const result = walk(value, text, false)
  if (result === undefined) return undefined
  let path = root
  for (let i = result.keys.length - 1; i >= 0; i--) path = member(path, result.keys[i]!)
  return result.problem(path)
}
