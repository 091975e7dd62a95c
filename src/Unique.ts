/**
 * Unique jobs: at most one job per key in the chosen states. The key is computed from the
 * job's type, queue and args (all of them, or the named fields), and optionally the period
 * the insert falls in. A unique index enforces it, so concurrent inserters cannot race.
 */
import { createHash } from "node:crypto"
import { Duration } from "effect"
import type { JobState } from "./JobRecord.js"

export interface Options<Args = unknown> {
  /** What makes two jobs the same: all their args, or only these fields. Defaults to `"args"`. */
  readonly by?: "args" | ReadonlyArray<keyof Args & string> | undefined
  /**
   * Jobs count as the same only when inserted within the same period of this length
   * (periods are aligned to the epoch). Defaults to forever.
   */
  readonly period?: Duration.DurationInput | undefined
  /**
   * The states in which an existing job blocks a new one. Must include `scheduled`,
   * `available`, `executing` and `retryable`; may add `completed`, `cancelled` or
   * `discarded`. Defaults to every state but `cancelled` and `discarded`.
   */
  readonly states?: ReadonlyArray<JobState> | undefined
}

/** The states every unique key must block in: a job passes through them by itself. */
export const requiredStates: ReadonlyArray<JobState> = ["scheduled", "available", "executing", "retryable"]

export const defaultStates: ReadonlyArray<JobState> = [...requiredStates, "completed"]

/** JSON with object keys sorted, so equal values give equal text. */
const canonical = (value: unknown): string => {
  if (Array.isArray(value)) return `[${value.map(canonical).join(",")}]`
  if (value !== null && typeof value === "object") {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonical(v)}`).join(",")}}`
  }
  return JSON.stringify(value) ?? "null"
}

/** The key stored with the job: a hash of what makes it unique. */
export const key = (
  options: Options<any>,
  type: string,
  queue: string,
  encodedArgs: unknown,
  now: number,
): string => {
  const by = options.by ?? "args"
  const args =
    by === "args"
      ? encodedArgs
      : Object.fromEntries(
          by.map((field) => [field, (encodedArgs as Record<string, unknown> | null)?.[field]]),
        )
  const period =
    options.period === undefined ? "" : String(Math.floor(now / Duration.toMillis(options.period)))
  return createHash("sha256")
    .update(canonical([type, queue, args, period]))
    .digest("base64url")
}
