/**
 * Jobs found by a filter: pages by cursor, counts, bulk cancel, retry and delete, and reads
 * through a job's definition that answer decoded, typed records.
 */
import { Clock, Effect, Either, Encoding, ParseResult, Schema } from "effect"
import type * as Job from "../../Job.js"
import {
  type DatabaseError,
  type InvalidJobOptions,
  JobDecodeError,
  JobTypeMismatch,
} from "../../JobError.js"
import type { Filter } from "../../JobFilter.js"
import { type JobRecord, JobState, type Typed } from "../../JobRecord.js"
import { toDatabaseError } from "../store/retryDatabase.js"
import type * as Store from "../store/store.js"
import type { ApiEnvironment } from "./api.js"
import type * as Jobs from "./service.js"
import { announceCancel, signal } from "./signals.js"
import { checkWholeNumber, invalid } from "./validation.js"

const traced = (name: string) => Effect.withSpan(name, { captureStackTrace: false })

const isText = (value: unknown): value is string => typeof value === "string" && value.length > 0

/** Refuses a filter the store could not apply as meant; answers it unchanged otherwise. */
export const checkFilter = (filter: Filter): Effect.Effect<Filter, InvalidJobOptions> =>
  Effect.gen(function* () {
    const texts = (name: string, value: unknown) =>
      value === undefined || (Array.isArray(value) ? value.every(isText) : isText(value))
        ? Effect.void
        : Effect.fail(invalid(`${name} must be a non-empty string or a list of them`))
    yield* texts("queue", filter.queue)
    yield* texts("type", filter.type)
    if (filter.state !== undefined) {
      for (const state of typeof filter.state === "string" ? [filter.state] : filter.state) {
        if (!Schema.is(JobState)(state)) return yield* invalid(`unknown job state ${JSON.stringify(state)}`)
      }
    }
    for (const [name, value] of [
      ["args", filter.args],
      ["meta", filter.meta],
    ] as const) {
      if (value === undefined) continue
      if (typeof value !== "object" || value === null || (name === "meta" && Array.isArray(value)))
        return yield* invalid(`${name} must be an object of what the job's ${name} contain`)
      const json = yield* Effect.try({
        try: () => JSON.stringify(value),
        catch: (error) => invalid(`${name} is not JSON: ${String(error)}`),
      })
      if (json.includes("\\u0000"))
        return yield* invalid(`${name} holds a NUL character, which no job stores`)
    }
    for (const [name, value] of [
      ["schedule", filter.schedule],
      ["node", filter.node],
      ["error", filter.error],
    ] as const) {
      if (value !== undefined && !isText(value)) return yield* invalid(`${name} must be a non-empty string`)
    }
    if (filter.resource !== undefined) {
      if (!isText(filter.resource.type)) return yield* invalid("resource.type must be a non-empty string")
      if (filter.resource.id !== undefined && !isText(filter.resource.id))
        return yield* invalid("resource.id must be a non-empty string")
    }
    if (
      filter.errorGroup !== undefined &&
      !(typeof filter.errorGroup.tag === "string" && typeof filter.errorGroup.pattern === "string")
    )
      return yield* invalid("errorGroup must have a tag and a pattern, both strings")
    for (const name of ["inserted", "scheduled", "finished"] as const) {
      for (const end of ["from", "to"] as const) {
        const date = filter[name]?.[end]
        if (date !== undefined && !(date instanceof Date && !Number.isNaN(date.getTime())))
          return yield* invalid(`${name}.${end} must be a valid Date`)
      }
    }
    return filter
  })

/** The filter's own conditions, without the page's options. */
const filterOf = (options: Jobs.ListOptions): Filter => {
  const { limit: _limit, order: _order, cursor: _cursor, offset: _offset, ...filter } = options
  return filter
}

const isEmpty = (filter: Filter) => Object.values(filter).every((value) => value === undefined)

/**
 * A cursor: the order and the last id of a page, and a digest of the filter, so a cursor
 * given with another filter is refused rather than answering a page of something else.
 */
const digest = (filter: Filter): string => {
  const text = stable(filter)
  let hash = 0x811c9dc5
  for (let i = 0; i < text.length; i++) hash = Math.imul(hash ^ text.charCodeAt(i), 0x01000193)
  return (hash >>> 0).toString(36)
}

/** JSON with every object's keys sorted, so equal filters give equal text. */
const stable = (value: unknown): string => {
  if (value instanceof Date) return JSON.stringify(value.toISOString())
  if (Array.isArray(value)) return `[${value.map(stable).join(",")}]`
  if (typeof value === "object" && value !== null) {
    const entries = Object.entries(value).filter(([, v]) => v !== undefined)
    entries.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${stable(v)}`).join(",")}}`
  }
  return JSON.stringify(value) ?? "null"
}

const Cursor = Schema.parseJson(
  Schema.Struct({ o: Schema.Literal("newest", "oldest"), id: Schema.Int, f: Schema.String }),
)

const encodeCursor = (order: Store.ListOrder, id: number, filter: Filter) =>
  Encoding.encodeBase64Url(Schema.encodeSync(Cursor)({ o: order, id, f: digest(filter) }))

const decodeCursor = (cursor: string, order: Store.ListOrder, filter: Filter) => {
  const decoded = Either.flatMap(
    Either.mapLeft(Encoding.decodeBase64UrlString(cursor), () => undefined),
    (text) => Either.mapLeft(Schema.decodeUnknownEither(Cursor)(text), () => undefined),
  )
  if (Either.isLeft(decoded)) {
    return Effect.fail(invalid(`cursor ${JSON.stringify(cursor)} is not one a listing gave`))
  }
  if (decoded.right.o !== order || decoded.right.f !== digest(filter)) {
    return Effect.fail(
      invalid("the cursor belongs to a listing with another filter or order: give the same ones"),
    )
  }
  return Effect.succeed(decoded.right.id)
}

const describe = (error: ParseResult.ParseError) => ParseResult.TreeFormatter.formatErrorSync(error)

/** The record with its args and result decoded by the definition, or why they are not. */
export const decodeRecord = <D extends Job.Definition>(
  record: JobRecord,
  definition: D,
): Effect.Effect<Typed<D>, JobTypeMismatch | JobDecodeError> => {
  if (record.type !== definition.type) {
    return Effect.fail(new JobTypeMismatch({ id: record.id, expected: definition.type, actual: record.type }))
  }
  const fail = (field: "args" | "result", error: ParseResult.ParseError) =>
    Effect.fail(new JobDecodeError({ id: record.id, type: record.type, field, reason: describe(error) }))
  const args = Schema.decodeUnknownEither(definition.argsSchema)(record.args)
  if (Either.isLeft(args)) return fail("args", args.left)
  let result: unknown = null
  if (record.result !== null && definition.resultSchema._tag === "Some") {
    const decoded = Schema.decodeUnknownEither(definition.resultSchema.value)(record.result)
    if (Either.isLeft(decoded)) return fail("result", decoded.left)
    result = decoded.right
  }
  // On the record's prototype, so the copy keeps what a JobRecord has (`isTerminal`).
  const typed = Object.assign(Object.create(Object.getPrototypeOf(record)), record, {
    args: args.right,
    result,
  })
  return Effect.succeed(typed as Typed<D>)
}

const decodeAll = <D extends Job.Definition>(records: ReadonlyArray<JobRecord>, definition: D) =>
  Effect.forEach(records, (record) => decodeRecord(record, definition))

/** Only the definition's type: a filter that names another is refused. */
const forDefinition = (options: Jobs.ListOptions, definition: Job.Definition) => {
  const types =
    options.type === undefined ? undefined : typeof options.type === "string" ? [options.type] : options.type
  return types !== undefined && !types.includes(definition.type)
    ? Effect.fail(invalid(`the filter's type leaves out "${definition.type}", the definition's type`))
    : Effect.succeed({ ...options, type: definition.type })
}

/** A page of jobs by keyset (or offset), with the cursor of the next one. */
const page = (store: Store.Store, options: Jobs.ListOptions) =>
  Effect.gen(function* () {
    const limit = options.limit ?? 50
    const order = options.order ?? "newest"
    yield* checkWholeNumber("limit", limit, 1, 1000)
    if (order !== "newest" && order !== "oldest") return yield* invalid('order must be "newest" or "oldest"')
    if (options.offset !== undefined) {
      yield* checkWholeNumber("offset", options.offset, 0, Number.MAX_SAFE_INTEGER)
      if (options.cursor !== undefined) return yield* invalid("give cursor or offset, not both")
    }
    const filter = yield* checkFilter(filterOf(options))
    const after =
      options.cursor === undefined ? undefined : yield* decodeCursor(options.cursor, order, filter)
    // One row past the page says whether another page follows.
    const rows = yield* store
      .listJobs({ filter, limit: limit + 1, order, after, offset: options.offset })
      .pipe(Effect.mapError(toDatabaseError("listing jobs")))
    const jobs = rows.slice(0, limit)
    const next = rows.length > limit ? encodeCursor(order, jobs[jobs.length - 1]!.id, filter) : null
    return { jobs, next } satisfies Jobs.JobPage
  })

/** The failed jobs grouped by their last error, from the newest `scanned` of them. */
const failureGroups =
  (store: Store.Store) =>
  (options: Jobs.FailureGroupsOptions = {}) =>
    Effect.gen(function* () {
      const scanned = options.scanned ?? 5000
      const limit = options.limit ?? 50
      yield* checkWholeNumber("scanned", scanned, 1, 1_000_000)
      yield* checkWholeNumber("limit", limit, 1, 1000)
      const found = yield* store
        .failureGroups(scanned, limit)
        .pipe(Effect.mapError(toDatabaseError("grouping failed jobs")))
      return { groups: found.groups, partial: found.more } satisfies Jobs.FailureGroups
    }).pipe(traced("Jobs.failureGroups"))

export const make = (env: ApiEnvironment) => {
  const { store, local } = env
  const listPage = (options: Jobs.ListOptions = {}, definition?: Job.Definition): Effect.Effect<any, any> =>
    definition === undefined
      ? page(store, options).pipe(traced("Jobs.listPage"))
      : Effect.gen(function* () {
          const result = yield* page(store, yield* forDefinition(options, definition))
          return { jobs: yield* decodeAll(result.jobs, definition), next: result.next }
        }).pipe(traced("Jobs.listPage"))

  const list = (options: Jobs.ListOptions = {}, definition?: Job.Definition): Effect.Effect<any, any> =>
    Effect.map(listPage(options, definition), (result) => result.jobs).pipe(traced("Jobs.list"))

  const count = (filter: Filter = {}, options: Jobs.CountOptions = {}) =>
    Effect.gen(function* () {
      const exactUpTo = options.exactUpTo ?? 10_000
      yield* checkWholeNumber("exactUpTo", exactUpTo, 0, 1_000_000)
      const checked = yield* checkFilter(filter)
      return yield* store
        .countJobs(checked, exactUpTo)
        .pipe(Effect.mapError(toDatabaseError("counting jobs")))
    }).pipe(traced("Jobs.count"))

  /** Runs `step` over the matching jobs a batch at a time, until a batch comes back short. */
  const inBatches = <A>(
    name: string,
    filter: Filter,
    options: Jobs.BulkOptions,
    step: (
      filter: Filter,
      after: number,
      size: number,
      now: Date,
    ) => Effect.Effect<Store.BatchResult<A>, DatabaseError>,
  ) =>
    Effect.gen(function* () {
      const size = options.batchSize ?? 1000
      yield* checkWholeNumber("batchSize", size, 1, 10_000)
      const checked = yield* checkFilter(filter)
      if (isEmpty(checked)) {
        return yield* invalid(`${name} needs a filter: give at least one condition (a state, a queue, …)`)
      }
      let after = 0
      let changed = 0
      let selected = 0
      for (;;) {
        const now = new Date(yield* Clock.currentTimeMillis)
        const result = yield* step(checked, after, size, now)
        changed += result.changed.length
        selected += result.selected
        if (options.onBatch !== undefined) yield* options.onBatch({ selected, changed })
        if (result.selected < size || result.last === undefined) return changed
        after = result.last
      }
    }).pipe(traced(`Jobs.${name}`))

  const cancelAll = (filter: Filter, options: Jobs.BulkOptions = {}) =>
    inBatches("cancelAll", filter, options, (checked, after, size, now) =>
      Effect.gen(function* () {
        const result = yield* store
          .cancelBatch(checked, after, size, now)
          .pipe(Effect.mapError(toDatabaseError("cancelling jobs")))
        for (const { previous, record } of result.changed) {
          yield* announceCancel(store, local, record, previous, now.getTime())
        }
        return result
      }),
    )

  const retryAll = (filter: Filter, options: Jobs.BulkOptions = {}) =>
    inBatches("retryAll", filter, options, (checked, after, size, now) =>
      Effect.gen(function* () {
        const result = yield* store
          .retryBatch(checked, after, size, now)
          .pipe(Effect.mapError(toDatabaseError("retrying jobs")))
        for (const queue of new Set(result.changed.map((job) => job.queue))) {
          yield* signal(store, { kind: "insert", queue }, "waking the queue")
        }
        return result
      }),
    )

  const discardAll = (filter: Filter, options: Jobs.BulkOptions = {}) =>
    inBatches("discardAll", filter, options, (checked, after, size, now) =>
      store.discardBatch(checked, after, size, now).pipe(Effect.mapError(toDatabaseError("discarding jobs"))),
    )

  const deleteAll = (filter: Filter, options: Jobs.BulkOptions = {}) =>
    inBatches("deleteAll", filter, options, (checked, after, size) =>
      store.deleteBatch(checked, after, size).pipe(Effect.mapError(toDatabaseError("deleting jobs"))),
    )

  return {
    list,
    listPage,
    count,
    cancelAll,
    retryAll,
    discardAll,
    deleteAll,
    failureGroups: failureGroups(store),
  }
}
