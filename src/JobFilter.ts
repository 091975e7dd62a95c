/**
 * Which stored jobs a listing, a count or a bulk action is about, and the short text form of
 * its args and meta conditions (`args.user.id:42`) that a command line or a search box takes.
 */
import { Either } from "effect"
import { InvalidJobFilter } from "./JobError.js"
import type { JobState } from "./JobRecord.js"

/** A span of time: `from` included, `to` excluded; either may be left out. */
export interface TimeRange {
  readonly from?: Date | undefined
  readonly to?: Date | undefined
}

/** JSON that a job's args or meta must contain (PostgreSQL's `@>`). */
export type Containment = Readonly<Record<string, unknown>>

/**
 * The conditions a job must meet, all of them. A condition left out matches every job; a list
 * (of states, queues or types) matches any of its values.
 */
export interface Filter {
  readonly queue?: string | ReadonlyArray<string> | undefined
  readonly state?: JobState | ReadonlyArray<JobState> | undefined
  readonly type?: string | ReadonlyArray<string> | undefined
  /**
   * JSON the job's args contain: `{ user: { id: 42 } }` matches args that have `user.id` 42,
   * whatever else they hold; an array matches arrays holding its elements.
   */
  readonly args?: Containment | undefined
  /** JSON the job's meta contains, as for `args`. */
  readonly meta?: Containment | undefined
  /** The resource the jobs are aimed at: every resource of the type, or one by its id. */
  readonly resource?: { readonly type: string; readonly id?: string | undefined } | undefined
  /** Jobs a cron schedule of this name enqueued. */
  readonly schedule?: string | undefined
  /** Jobs whose last attempt ran on this node (`attemptedBy`). */
  readonly node?: string | undefined
  /** Jobs with a recorded error whose tag or message contains this text, ignoring case. */
  readonly error?: string | undefined
  /**
   * Jobs whose last error has this tag and whose message reads as `pattern` once numbers are
   * written `N` and UUIDs `<uuid>`: one group of `failureGroups`.
   */
  readonly errorGroup?: { readonly tag: string; readonly pattern: string } | undefined
  /** When the job was inserted. */
  readonly inserted?: TimeRange | undefined
  /** When the job is or was due. */
  readonly scheduled?: TimeRange | undefined
  /** When the job completed, was cancelled or was discarded; matches finished jobs only. */
  readonly finished?: TimeRange | undefined
}

/** A part of a filter written as text: containment conditions on args and meta. */
export interface ParsedContainment {
  readonly args?: Containment
  readonly meta?: Containment
}

const segmentPattern = /^[^.:\s]+$/

/** A value as typed: JSON when it reads as JSON (`42`, `true`, `null`, `"42"`, `[1]`), else the text itself. */
const parseValue = (text: string): unknown => {
  try {
    return JSON.parse(text)
  } catch {
    return text
  }
}

const isObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === "object" && value !== null && !Array.isArray(value)

/** Puts `value` at `path` in `target`, refusing a path already given another value. */
const place = (
  target: Record<string, unknown>,
  path: ReadonlyArray<string>,
  value: unknown,
): string | undefined => {
  const [head, ...rest] = path
  if (rest.length === 0) {
    if (head! in target) return `${path.join(".")} is given twice`
    target[head!] = value
    return undefined
  }
  const existing = target[head!]
  if (existing === undefined) target[head!] = {}
  else if (!isObject(existing)) return `${head} is given both a value and fields`
  return place(target[head!] as Record<string, unknown>, rest, value)
}

/**
 * Reads conditions written as `<args|meta>.<path>:<value>`, such as `args.user.id:42` or
 * `meta.tenant:"acme"`, into the containment objects of a `Filter` (`{ args: { user: { id: 42 } } }`).
 * The path is dot-separated keys; the value is everything after the first `:`, read as JSON
 * when it is JSON, else as text (`args.email:a@b.c` is the string `"a@b.c"`, `args.n:"7"` the
 * string `"7"`). Several conditions are merged into one object. A malformed condition fails
 * with `InvalidJobFilter`.
 */
export const parse = (
  conditions: string | ReadonlyArray<string>,
): Either.Either<ParsedContainment, InvalidJobFilter> => {
  const args: Record<string, unknown> = {}
  const meta: Record<string, unknown> = {}
  for (const condition of typeof conditions === "string" ? [conditions] : conditions) {
    const refuse = (reason: string) => Either.left(new InvalidJobFilter({ filter: condition, reason }))
    const colon = condition.indexOf(":")
    if (colon < 0) return refuse("write it as <args|meta>.<path>:<value>, such as args.user.id:42")
    const [root, ...path] = condition.slice(0, colon).split(".")
    if (root !== "args" && root !== "meta") return refuse('the path must start with "args." or "meta."')
    if (path.length === 0) return refuse(`give a field after "${root}.", such as ${root}.id:42`)
    const bad = path.find((segment) => !segmentPattern.test(segment))
    if (bad !== undefined) return refuse(`the path has an empty or spaced key ${JSON.stringify(bad)}`)
    const text = condition.slice(colon + 1)
    if (text.length === 0) return refuse('give a value after ":" (write "" for the empty string)')
    const clash = place(root === "args" ? args : meta, path, parseValue(text))
    if (clash !== undefined) return refuse(clash)
  }
  return Either.right({
    ...(Object.keys(args).length > 0 ? { args } : {}),
    ...(Object.keys(meta).length > 0 ? { meta } : {}),
  })
}
