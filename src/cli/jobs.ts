/**
 * `jobs list|get|retry|cancel|delete|insert`. Retry, cancel and delete take ids, or a filter:
 * then they count what matches and ask before acting, unless `--yes`.
 */
import { Args, Command, Options, Prompt } from "@effect/cli"
import { Console, type Duration, Effect, Option, Schema } from "effect"
import * as Job from "../Job.js"
import { InvalidCommand, type InvalidJobFilter } from "../JobError.js"
import * as JobFilter from "../JobFilter.js"
import { type JobRecord, JobState } from "../JobRecord.js"
import type * as Jobs from "../Jobs.js"
import { JobsClient } from "../JobsClient.js"
import * as Global from "./global.js"
import * as Output from "./output.js"

const invalid = (message: string) => new InvalidCommand({ message })

const text = (name: string, description: string) =>
  Options.text(name).pipe(Options.withDescription(description), Options.optional)

const filterOptions = {
  state: Options.text("state").pipe(
    Options.withDescription(`Only jobs in these states (comma-separated): ${JobState.literals.join(", ")}.`),
    Options.optional,
  ),
  queue: text("queue", "Only jobs of these queues (comma-separated)."),
  type: text("type", "Only jobs of these types (comma-separated)."),
  where: Options.text("where").pipe(
    Options.withDescription(
      "Only jobs whose args or meta contain this, written <args|meta>.<path>:<value>, such as args.user.id:42 (repeatable).",
    ),
    Options.repeated,
  ),
  resource: text("resource", "Only jobs aimed at this resource: TYPE, or TYPE:ID."),
  schedule: text("schedule", "Only jobs the cron schedule of this name enqueued."),
  node: text("node", "Only jobs whose last attempt ran on this node."),
  error: text("error", "Only jobs with an error whose tag or message contains this text."),
  insertedAfter: text("inserted-after", "Only jobs inserted at or after this time (ISO 8601)."),
  insertedBefore: text("inserted-before", "Only jobs inserted before this time (ISO 8601)."),
}

interface Filter {
  readonly state: Option.Option<string>
  readonly queue: Option.Option<string>
  readonly type: Option.Option<string>
  readonly where: ReadonlyArray<string>
  readonly resource: Option.Option<string>
  readonly schedule: Option.Option<string>
  readonly node: Option.Option<string>
  readonly error: Option.Option<string>
  readonly insertedAfter: Option.Option<string>
  readonly insertedBefore: Option.Option<string>
}

const hasFilter = (filter: Filter) =>
  filter.where.length > 0 ||
  [
    filter.state,
    filter.queue,
    filter.type,
    filter.resource,
    filter.schedule,
    filter.node,
    filter.error,
    filter.insertedAfter,
    filter.insertedBefore,
  ].some(Option.isSome)

const items = (value: Option.Option<string>) =>
  Option.getOrUndefined(Option.map(value, (text) => text.split(",").map((item) => item.trim())))

const time = (option: string, value: Option.Option<string>) =>
  Effect.gen(function* () {
    if (Option.isNone(value)) return undefined
    const date = new Date(value.value)
    if (Number.isNaN(date.getTime())) {
      return yield* invalid(
        `--${option} ${JSON.stringify(value.value)} is not a time: give one such as 2026-12-02T09:00:00Z`,
      )
    }
    return date
  })

/** The listing's filter from the options, checked before the database is opened. */
const toFilter = (filter: Filter): Effect.Effect<JobFilter.Filter, InvalidCommand | InvalidJobFilter> =>
  Effect.gen(function* () {
    const states = items(filter.state)
    for (const state of states ?? []) {
      if (!Schema.is(JobState)(state)) {
        return yield* invalid(
          `--state ${JSON.stringify(state)} is not a job state: use ${JobState.literals.join(", ")}`,
        )
      }
    }
    const containment = filter.where.length > 0 ? yield* JobFilter.parse(filter.where) : {}
    const resource = Option.map(filter.resource, (value) => {
      const at = value.indexOf(":")
      return at < 0 ? { type: value } : { type: value.slice(0, at), id: value.slice(at + 1) }
    })
    const from = yield* time("inserted-after", filter.insertedAfter)
    const to = yield* time("inserted-before", filter.insertedBefore)
    return {
      state: states as ReadonlyArray<JobState> | undefined,
      queue: items(filter.queue),
      type: items(filter.type),
      ...containment,
      resource: Option.getOrUndefined(resource),
      schedule: Option.getOrUndefined(filter.schedule),
      node: Option.getOrUndefined(filter.node),
      error: Option.getOrUndefined(filter.error),
      inserted: from === undefined && to === undefined ? undefined : { from, to },
    }
  })

const lastError = (job: JobRecord) => {
  const error = job.errors[job.errors.length - 1]
  if (error === undefined) return "-"
  const line = error.message.split("\n")[0]!
  return line.length > 60 ? `${line.slice(0, 59)}…` : line
}

const jobRows = (jobs: ReadonlyArray<JobRecord>) =>
  Output.table(
    ["id", "state", "queue", "type", "attempt", "scheduled", "last error"],
    jobs.map((job) => [
      String(job.id),
      Output.state(job.state),
      job.queue,
      job.type,
      `${job.attempt}/${job.maxAttempts}`,
      Output.cell(job.scheduledAt),
      lastError(job),
    ]),
  )

const list = Command.make(
  "list",
  {
    global: Global.options,
    ...filterOptions,
    limit: Options.integer("limit").pipe(
      Options.withDescription("At most this many jobs (1 to 1,000)."),
      Options.withDefault(50),
    ),
    cursor: text("cursor", "Start where the page before ended (its `next`)."),
    oldest: Options.boolean("oldest").pipe(Options.withDescription("Oldest first instead of newest first.")),
  },
  ({ global, limit, cursor, oldest, ...filter }) =>
    Effect.gen(function* () {
      const options = yield* toFilter(filter)
      return yield* Effect.gen(function* () {
        const client = yield* JobsClient
        const page = yield* client.listPage({
          ...options,
          limit,
          order: oldest ? "oldest" : "newest",
          cursor: Option.getOrUndefined(cursor),
        })
        const total = yield* client.count(options)
        yield* Output.print(global.json, { ...page, total }, () =>
          [
            jobRows(page.jobs),
            "",
            `${page.jobs.length} shown of ${total.estimated ? "about " : ""}${total.count} matching${page.next === null ? "" : `; next page: --cursor ${page.next}`}`,
          ].join("\n"),
        )
      }).pipe(Effect.provide(Global.clientLayer(global)))
    }),
).pipe(
  Command.withDescription("List jobs, newest first, a page at a time, with the count of all that match."),
)

const parseId = (raw: string) =>
  /^[1-9]\d{0,15}$/.test(raw)
    ? Effect.succeed(Number(raw))
    : Effect.fail(invalid(`${JSON.stringify(raw)} is not a job id: ids are whole numbers from 1`))

const json = (value: unknown) => (value === null || value === undefined ? "-" : JSON.stringify(value))

const get = Command.make(
  "get",
  { global: Global.options, id: Args.text({ name: "id" }).pipe(Args.withDescription("The job's id.")) },
  ({ global, id }) =>
    Effect.gen(function* () {
      const client = yield* JobsClient
      const job = yield* client.get(yield* parseId(id))
      yield* Output.print(global.json, job, () =>
        [
          Output.fields([
            ["id", String(job.id)],
            ["state", Output.state(job.state)],
            ["queue", job.queue],
            ["type", job.type],
            ["args", json(job.args)],
            ["meta", json(job.meta)],
            ["priority", String(job.priority)],
            [
              "attempt",
              `${job.attempt} of ${job.maxAttempts}${job.rescues > 0 ? `, rescued ${job.rescues}×` : ""}`,
            ],
            ["resource", job.resourceType === null ? "-" : `${job.resourceType} ${job.resourceId}`],
            ["inserted", Output.cell(job.insertedAt)],
            ["scheduled", Output.cell(job.scheduledAt)],
            [
              "attempted",
              job.attemptedAt === null ? "-" : `${Output.cell(job.attemptedAt)} by ${job.attemptedBy}`,
            ],
            ["completed", Output.cell(job.completedAt)],
            ["cancelled", Output.cell(job.cancelledAt)],
            ["discarded", Output.cell(job.discardedAt)],
            ["result", json(job.result)],
          ]),
          ...(job.errors.length === 0
            ? []
            : [
                "",
                Output.bold("errors"),
                Output.table(
                  ["attempt", "at", "tag", "message"],
                  job.errors.map((e) => [
                    String(e.attempt),
                    Output.cell(e.at),
                    e.tag,
                    e.message.split("\n")[0]!,
                  ]),
                ),
              ]),
        ].join("\n"),
      )
    }).pipe(Effect.provide(Global.clientLayer(global))),
).pipe(Command.withDescription("Show one job: args, meta, times, errors and result."))

type Action = "retry" | "cancel" | "delete"
const pastTense: Record<Action, string> = { retry: "retried", cancel: "cancelled", delete: "deleted" }

/** Asks on a terminal; elsewhere (a script, a pipe) only `--yes` may act on a filter. */
const confirm = (message: string, yes: boolean) =>
  Effect.gen(function* () {
    if (yes) return true
    if (process.stdin.isTTY !== true) {
      return yield* invalid(`${message} Add --yes to go ahead without a prompt.`)
    }
    return yield* Prompt.confirm({ message })
  })

const act = (client: JobsClient["Type"], action: Action, id: number) =>
  action === "retry" ? client.retry(id) : action === "cancel" ? client.cancel(id) : client.delete(id)

const manyCommand = (action: Action, description: string) =>
  Command.make(
    action,
    {
      global: Global.options,
      ids: Args.text({ name: "id" }).pipe(Args.withDescription("Job ids."), Args.repeated),
      ...filterOptions,
      yes: Options.boolean("yes").pipe(Options.withDescription("Act on a filter's jobs without asking.")),
    },
    ({ global, ids, yes, ...filter }) =>
      Effect.gen(function* () {
        const client = yield* JobsClient
        const byFilter = hasFilter(filter)
        if (ids.length > 0 && byFilter) return yield* invalid("give job ids or a filter, not both")
        if (ids.length === 0 && !byFilter) {
          return yield* invalid(`give the ids of the jobs to ${action}, or a filter (see --help)`)
        }
        if (ids.length > 0) {
          const wanted = yield* Effect.forEach(ids, parseId)
          // All of them exist before any changes: a typo in one id leaves the others alone.
          for (const id of wanted) yield* client.get(id)
          const done = yield* Effect.forEach(wanted, (id) => Effect.as(act(client, action, id), id))
          return yield* Output.print(global.json, { [pastTense[action]]: done }, () =>
            done.map((id) => `job ${id} ${pastTense[action]}`).join("\n"),
          )
        }
        const options = yield* toFilter(filter)
        const { count, estimated } = yield* client.count(options)
        if (count === 0) {
          return yield* Output.print(global.json, { matched: 0, changed: 0 }, () => "no job matches")
        }
        const go = yield* confirm(
          `${estimated ? "about " : ""}${count} job${count === 1 ? "" : "s"} match. ${action} them?`,
          yes,
        )
        if (!go) return yield* Console.log("nothing changed")
        // Jobs whose state does not allow the action (a finished job is not cancelled) are left.
        const changed = yield* action === "retry"
          ? client.retryAll(options)
          : action === "cancel"
            ? client.cancelAll(options)
            : client.deleteAll(options)
        yield* Output.print(
          global.json,
          { matched: count, changed },
          () =>
            `${pastTense[action]} ${changed} of the ${estimated ? "about " : ""}${count} matching job${count === 1 ? "" : "s"}`,
        )
      }).pipe(Effect.provide(Global.clientLayer(global))),
  ).pipe(Command.withDescription(description))

/** Args are whatever JSON the option holds: the type's handler decodes them with its own Schema. */
const AnyJson = Schema.Unknown as unknown as Schema.Schema<Job.Json, Job.Json>

const parseJson = (option: string, raw: string) =>
  Effect.try({
    try: () => JSON.parse(raw) as unknown,
    catch: (error) => invalid(`${option} is not valid JSON: ${(error as Error).message}`),
  })

const insert = Command.make(
  "insert",
  {
    global: Global.options,
    type: Args.text({ name: "type" }).pipe(
      Args.withDescription("The job type, as its handler is registered."),
    ),
    args: Options.text("args").pipe(
      Options.withDescription("The job's args, as JSON."),
      Options.withDefault("{}"),
    ),
    queue: Options.text("queue").pipe(Options.withDescription("The queue."), Options.withDefault("default")),
    priority: Options.integer("priority").pipe(
      Options.withDescription("Lower runs first."),
      Options.optional,
    ),
    maxAttempts: Options.integer("max-attempts").pipe(Options.optional),
    meta: text("meta", "Free-form data stored with the job, as a JSON object."),
    scheduleIn: text("schedule-in", 'Run no earlier than this from now, such as "10 minutes".'),
    resource: text("resource", "The resource the job is aimed at, as TYPE:ID (for a resource job type)."),
  },
  ({ global, type, args, queue, priority, maxAttempts, meta, scheduleIn, resource }) =>
    Effect.gen(function* () {
      const client = yield* JobsClient
      const decodedArgs = yield* parseJson("--args", args)
      const decodedMeta = Option.isSome(meta) ? yield* parseJson("--meta", meta.value) : undefined
      if (
        decodedMeta !== undefined &&
        (decodedMeta === null || typeof decodedMeta !== "object" || Array.isArray(decodedMeta))
      ) {
        return yield* invalid("--meta must be a JSON object")
      }
      const target = Option.map(resource, (value) => {
        const at = value.indexOf(":")
        return at > 0 ? { type: value.slice(0, at), id: value.slice(at + 1) } : undefined
      })
      if (Option.isSome(target) && target.value === undefined) {
        return yield* invalid("--resource must be TYPE:ID, such as post:42")
      }
      const definition = Job.make(type, {
        args: AnyJson,
        queue,
        ...(Option.isSome(target) && target.value !== undefined ? { resource: target.value.type } : {}),
      })
      const job = yield* client.insert(
        definition,
        decodedArgs as Job.Json,
        {
          priority: Option.getOrUndefined(priority),
          maxAttempts: Option.getOrUndefined(maxAttempts),
          meta: decodedMeta as Record<string, unknown> | undefined,
          // Checked by the insert, which reads text such as "10 minutes" and refuses the rest.
          scheduleIn: Option.getOrUndefined(scheduleIn) as Duration.DurationInput | undefined,
          resource: Option.isSome(target) ? target.value?.id : undefined,
          // The definition is made here: whether it has a resource type is known at run time only.
        } as Jobs.InsertOptions & { readonly resource: string },
      )
      yield* Output.print(
        global.json,
        job,
        () =>
          `inserted job ${job.id} (${job.type}, queue ${job.queue}, ${job.state})${job.conflict ? ": a unique job held its key, so this is that job" : ""}`,
      )
    }).pipe(Effect.provide(Global.clientLayer(global))),
).pipe(Command.withDescription("Insert a job of TYPE with JSON args (the type's handler decodes them)."))

export const command = Command.make("jobs").pipe(
  Command.withDescription("List, show, retry, cancel, delete and insert jobs."),
  Command.withSubcommands([
    list,
    get,
    manyCommand("retry", "Make jobs available to run now (by id, or by filter after a confirmation)."),
    manyCommand("cancel", "Cancel pending or executing jobs (by id, or by filter after a confirmation)."),
    manyCommand("delete", "Delete jobs that are not executing (by id, or by filter after a confirmation)."),
    insert,
  ]),
)
