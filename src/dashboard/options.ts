/**
 * What an app decides about its dashboard: where it lives, who may do what, how job data is
 * shown, and where the audit events go.
 */
import type { HttpServerRequest } from "@effect/platform/HttpServerRequest"
import type { Effect } from "effect"
import type { JobRecord } from "../JobRecord.js"

/** Every state change the dashboard offers. */
export type Action =
  | "job.retry"
  | "job.cancel"
  | "job.delete"
  | "job.discard"
  | "job.editAndRetry"
  | "job.duplicate"
  | "queue.pause"
  | "queue.resume"
  | "queue.scale"
  | "schedule.pause"
  | "schedule.resume"
  | "schedule.runNow"
  | "task.runNow"
  | "task.pause"
  | "task.resume"

export const actions: ReadonlyArray<Action> = [
  "job.retry",
  "job.cancel",
  "job.delete",
  "job.discard",
  "job.editAndRetry",
  "job.duplicate",
  "queue.pause",
  "queue.resume",
  "queue.scale",
  "schedule.pause",
  "schedule.resume",
  "schedule.runNow",
  "task.runNow",
  "task.pause",
  "task.resume",
]

/** What a request may do: `forbidden` sees nothing, `read-only` sees everything and changes nothing. */
export interface Access {
  readonly level: "full" | "read-only" | "forbidden"
  /** With `full`, only these actions. Defaults to every action. */
  readonly actions?: ReadonlyArray<Action> | undefined
  /** Who is asking, named in the audit events. */
  readonly user?: string | undefined
}

/** One state change made through the dashboard, successful or refused. */
export interface AuditEvent {
  readonly at: Date
  readonly user: string | null
  readonly action: Action
  /** The job ids, queue name, schedule name or task id acted on. */
  readonly target: string
  readonly outcome: "done" | "failed"
  /** Why it failed, when it did. */
  readonly error?: string | undefined
}

/** Which part of a job a value shown comes from. */
export type Field = "args" | "meta" | "result"

export interface Options {
  /**
   * The path the dashboard is served under, such as `"/admin/jobs"`: every route and link
   * starts with it. Defaults to `""` (the root).
   */
  readonly prefix?: string | undefined
  /** The PostgreSQL schema of the jobs tables, for its notifications. Defaults to `"effect_jobs"`. */
  readonly schema?: string | undefined
  /**
   * Decides, per request, what it may see and do. Defaults to full access for every request:
   * give one whenever the dashboard is reachable by anyone but its operators.
   */
  readonly access?: ((request: HttpServerRequest) => Effect.Effect<Access | Access["level"]>) | undefined
  /**
   * Replaces a job's args, meta or result before they are shown or offered for editing, to
   * hide secrets. Defaults to showing them as stored.
   */
  readonly redact?: ((value: unknown, field: Field, job: JobRecord) => unknown) | undefined
  /** Receives every action taken or refused. Defaults to logging it at info level. */
  readonly audit?: ((event: AuditEvent) => Effect.Effect<void>) | undefined
  /** Asks for this user name and password (HTTP basic auth) before anything else. Defaults to none. */
  readonly basicAuth?: { readonly username: string; readonly password: string } | undefined
  /** Page size of the jobs list. Defaults to 50. */
  readonly pageSize?: number | undefined
}
