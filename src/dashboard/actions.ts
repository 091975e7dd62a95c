/**
 * The state changes, each a POST that names one action. Whatever the outcome, the request is
 * answered with a redirect back to the page it came from, carrying a notice, and an audit event.
 */
import { Effect, Either, Schema } from "effect"
import * as Job from "../Job.js"
import type * as JobFilter from "../JobFilter.js"
import type { JobRecord } from "../JobRecord.js"
import type * as Bulk from "./bulk.js"
import type { Sources } from "./data.js"
import type { Action } from "./options.js"
import { queryString, readQuery, toFilter } from "./pages/jobs.js"

export interface Done {
  /** What to tell the operator. */
  readonly notice: string
  /** Which jobs, queue, schedule or task it acted on, for the audit. */
  readonly target: string
  /** Where to go next, when not back where the form was (a deleted job's page is gone). */
  readonly location?: string | undefined
}

/** A refusal the operator can act on: shown as a notice, the action changed nothing. */
export class ActionRefused extends Schema.TaggedError<ActionRefused>()("ActionRefused", {
  message: Schema.String,
  target: Schema.String,
}) {}

type Form = Readonly<Record<string, string | undefined>>

const jobId = (form: Form) => {
  const id = Number(form.id)
  return Number.isSafeInteger(id) && id > 0
    ? Effect.succeed(id)
    : Effect.fail(new ActionRefused({ message: `not a job id: ${form.id ?? "none"}`, target: form.id ?? "" }))
}

const textField = (form: Form, name: string) => {
  const value = form[name]
  return value === undefined || value === ""
    ? Effect.fail(new ActionRefused({ message: `${name} is missing`, target: "" }))
    : Effect.succeed(value)
}

/**
 * A definition for a type known only by name, whose args are inserted as given: the
 * dashboard holds none of the app's code, and the stored args are already encoded.
 */
const rawDefinition = (type: string, resource: string | null): Job.Definition =>
  Job.make(type, {
    args: Schema.Unknown as unknown as Schema.Schema<unknown, Job.Json>,
    ...(resource === null ? {} : { resource }),
  })

/** A new job like `job`, with `args`; the original stays as it is. */
const insertLike = (sources: Sources, job: JobRecord, args: unknown, meta: Record<string, unknown>) =>
  sources.client.insert(rawDefinition(job.type, job.resourceType), args, {
    queue: job.queue,
    priority: job.priority,
    maxAttempts: job.maxAttempts,
    meta: { ...job.meta, ...meta },
    ...(job.resourceId === null ? {} : { resource: job.resourceId }),
  })

const parseArgs = (text: string, target: string) =>
  Effect.try({
    try: () => JSON.parse(text) as unknown,
    catch: (error) =>
      new ActionRefused({ message: `the args are not JSON: ${(error as Error).message}`, target }),
  })

/** `retry:selected`, `discard:matching`…: which bulk action, and on which jobs. */
export const bulkVerb = (form: Form): Bulk.Verb | undefined => {
  const verb = (form.do ?? "").split(":")[0]
  return verb === "retry" || verb === "cancel" || verb === "discard" || verb === "delete" ? verb : undefined
}

const pastTense = { retry: "retried", cancel: "cancelled", discard: "discarded", delete: "deleted" } as const
const presentTense = {
  retry: "Retrying",
  cancel: "Cancelling",
  discard: "Discarding",
  delete: "Deleting",
} as const

const bulkOne = (sources: Sources, verb: Exclude<Bulk.Verb, "discard">, id: number) =>
  verb === "retry"
    ? sources.client.retry(id)
    : verb === "cancel"
      ? sources.client.cancel(id)
      : sources.client.delete(id)

const bulkAll = (
  sources: Sources,
  verb: Bulk.Verb,
  filter: JobFilter.Filter,
  onBatch: (progress: Bulk.Progress) => Effect.Effect<void>,
) => {
  const options = { onBatch }
  switch (verb) {
    case "retry":
      return sources.client.retryAll(filter, options)
    case "cancel":
      return sources.client.cancelAll(filter, options)
    case "discard":
      return sources.client.discardAll(filter, options)
    case "delete":
      return sources.client.deleteAll(filter, options)
  }
}

/** The filter a bulk form carries in its `filter.*` fields: the page's own. */
const formFilter = (form: Form) =>
  readQuery(
    new URLSearchParams(
      Object.entries(form)
        .filter(([key, value]) => key.startsWith("filter.") && value !== undefined)
        .map(([key, value]): [string, string] => [key.slice("filter.".length), value as string]),
    ),
  )

/** Where a bulk action runs: the background runs, and what to tell when one fails. */
export interface BulkContext {
  readonly bulk: Bulk.Bulk
  readonly prefix: string
  readonly back: string
  readonly onFailure: (run: Bulk.BulkRun, message: string) => Effect.Effect<void>
}

/**
 * A bulk action: on the selected jobs one by one (a job that cannot take it, say one already
 * finished, is counted and skipped), or on every job matching the page's filter, started in
 * the background in the client's batches, with a page of its progress.
 */
export const runBulk = (
  sources: Sources,
  context: BulkContext,
  form: Form,
  ids: ReadonlyArray<string>,
): Effect.Effect<Done, unknown> =>
  Effect.gen(function* () {
    const verb = bulkVerb(form)
    if (verb === undefined) return yield* new ActionRefused({ message: "no bulk action given", target: "" })
    if ((form.do ?? "").endsWith(":matching")) {
      const query = formFilter(form)
      const filter = toFilter(query)
      const target = `jobs matching ${queryString(query, {}) || "everything"}`
      if (Either.isLeft(filter)) return yield* new ActionRefused({ message: filter.left, target })
      const total = yield* sources.client.count(filter.right)
      const id = yield* context.bulk.start(
        { verb, target, total, back: context.back },
        (onBatch) => bulkAll(sources, verb, filter.right, onBatch),
        context.onFailure,
      )
      return {
        notice: `${presentTense[verb]} ${total.estimated ? "about " : ""}${total.count.toLocaleString("en-US")} jobs.`,
        target,
        location: `${context.prefix}/bulk/${id}`,
      }
    }
    const numbers = ids.map(Number).filter((id) => Number.isSafeInteger(id) && id > 0)
    if (numbers.length === 0) return yield* new ActionRefused({ message: "no job is selected", target: "" })
    if (verb === "discard") {
      return yield* new ActionRefused({ message: "discard acts on every job matching a filter", target: "" })
    }
    const outcomes = yield* Effect.forEach(numbers, (id) => Effect.either(bulkOne(sources, verb, id)))
    const done = outcomes.filter(Either.isRight).length
    const skipped = outcomes.length - done
    return {
      notice: `${done} jobs ${pastTense[verb]}${skipped === 0 ? "" : `; ${skipped} could not be`}.`,
      target: `jobs ${numbers.join(", ")}`,
    }
  })

export const run = (
  sources: Sources,
  action: Action,
  form: Form,
  prefix: string,
): Effect.Effect<Done, unknown> => {
  const { client, schedules } = sources
  switch (action) {
    case "job.discard":
      return Effect.fail(
        new ActionRefused({ message: "discard acts on every job matching a filter", target: form.id ?? "" }),
      )
    case "job.retry":
      return Effect.flatMap(jobId(form), (id) =>
        Effect.as(client.retry(id), { notice: `Job ${id} is available again.`, target: `job ${id}` }),
      )
    case "job.cancel":
      return Effect.flatMap(jobId(form), (id) =>
        Effect.as(client.cancel(id), { notice: `Job ${id} is cancelled.`, target: `job ${id}` }),
      )
    case "job.delete":
      return Effect.flatMap(jobId(form), (id) =>
        Effect.as(client.delete(id), {
          notice: `Job ${id} is deleted.`,
          target: `job ${id}`,
          location: `${prefix}/jobs`,
        }),
      )
    case "job.duplicate":
      return Effect.gen(function* () {
        const id = yield* jobId(form)
        const job = yield* client.get(id)
        const copy = yield* insertLike(sources, job, job.args, { duplicatedFrom: id })
        return {
          notice: `Job ${copy.id} is a copy of job ${id}.`,
          target: `job ${id}`,
          location: `${prefix}/jobs/${copy.id}`,
        }
      })
    case "job.editAndRetry":
      return Effect.gen(function* () {
        const id = yield* jobId(form)
        const args = yield* parseArgs(yield* textField(form, "args"), `job ${id}`)
        const job = yield* client.get(id)
        const copy = yield* insertLike(sources, job, args, { retriedFrom: id })
        return {
          notice: `Job ${copy.id} retries job ${id} with the edited args.`,
          target: `job ${id}`,
          location: `${prefix}/jobs/${copy.id}`,
        }
      })
    case "queue.pause":
    case "queue.resume":
      return Effect.flatMap(textField(form, "queue"), (queue) => {
        // With a node, on that node alone.
        const target = form.node ? { node: form.node } : {}
        const where = form.node ? `on node ${form.node}` : "on every node"
        return Effect.as(
          action === "queue.pause" ? client.pauseQueue(queue, target) : client.resumeQueue(queue, target),
          {
            notice: `Queue ${queue} is ${action === "queue.pause" ? "paused" : "resumed"} ${where}.`,
            target: form.node ? `queue ${queue} on node ${form.node}` : `queue ${queue}`,
          },
        )
      })
    case "queue.scale":
      return Effect.gen(function* () {
        const queue = yield* textField(form, "queue")
        const concurrency = Number(yield* textField(form, "concurrency"))
        yield* client.scaleQueue(queue, concurrency, form.node ? { node: form.node } : {})
        return form.node
          ? {
              notice: `Queue ${queue} runs ${concurrency} at once on node ${form.node}.`,
              target: `queue ${queue} on node ${form.node}`,
            }
          : { notice: `Queue ${queue} runs ${concurrency} at once per node.`, target: `queue ${queue}` }
      })
    case "schedule.pause":
    case "schedule.resume":
      return Effect.flatMap(textField(form, "name"), (name) =>
        Effect.as(action === "schedule.pause" ? schedules.pause(name) : schedules.resume(name), {
          notice: `Schedule ${name} is ${action === "schedule.pause" ? "paused" : "resumed"}.`,
          target: `schedule ${name}`,
        }),
      )
    case "schedule.runNow":
      return Effect.gen(function* () {
        const name = yield* textField(form, "name")
        const job = yield* schedules.runNow(name)
        return {
          notice: `Schedule ${name} inserted job ${job.id}.`,
          target: `schedule ${name}`,
          location: `${prefix}/jobs/${job.id}`,
        }
      })
    case "task.runNow":
      return Effect.flatMap(textField(form, "task"), (id) =>
        Effect.map(client.requestTaskRun(id), (stats) => ({
          notice:
            stats.nodes.length === 0
              ? `A run of task ${id} is requested; no live node has it registered, so it waits for one.`
              : `A run of task ${id} is requested: it starts now on ${stats.nodes.length === 1 ? stats.nodes[0] : `one of ${stats.nodes.join(", ")}`}.`,
          target: `task ${id}`,
        })),
      )
    case "task.pause":
    case "task.resume":
      return Effect.flatMap(textField(form, "task"), (id) =>
        Effect.as(action === "task.pause" ? client.pauseTask(id) : client.resumeTask(id), {
          notice: `Task ${id} is ${action === "task.pause" ? "paused" : "resumed"} on every node.`,
          target: `task ${id}`,
        }),
      )
  }
}
