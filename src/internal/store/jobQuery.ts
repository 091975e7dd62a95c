/**
 * The jobs table searched by a `JobFilter.Filter`: pages by keyset on the id, counts that
 * turn into the planner's estimate past a threshold, and cancel, retry and delete of every
 * matching job, a batch at a time.
 */
import type { SqlError } from "@effect/sql/SqlError"
import { Effect } from "effect"
import type { Filter } from "../../JobFilter.js"
import type { JobRecord, JobState } from "../../JobRecord.js"
import type { StoreContext } from "./context.js"
import { columns, recordFromRow } from "./records.js"

/** Newest first (id descending) or oldest first. */
export type ListOrder = "newest" | "oldest"

export interface PageQuery {
  readonly filter: Filter
  readonly limit: number
  readonly order: ListOrder
  /** The id of the last job of the previous page: the page starts past it. */
  readonly after?: number | undefined
  /** Rows to skip: the older way to page, kept for callers that still pass it. */
  readonly offset?: number | undefined
}

export interface JobCount {
  readonly count: number
  /** True when `count` is the planner's estimate rather than a count of the rows. */
  readonly estimated: boolean
}

/** One batch of a bulk action: the ids it looked at (in id order) and the jobs it changed. */
export interface BatchResult<A> {
  /** The largest id the batch selected, or undefined when it selected none. */
  readonly last: number | undefined
  /** How many ids it selected: fewer than the batch size means the matching jobs ran out. */
  readonly selected: number
  readonly changed: ReadonlyArray<A>
}

export interface JobQueryStore {
  /** A page of the jobs that match, in the order asked. */
  readonly listJobs: (query: PageQuery) => Effect.Effect<ReadonlyArray<JobRecord>, SqlError>
  /** How many jobs match: counted up to `exactUpTo`, estimated past it. */
  readonly countJobs: (filter: Filter, exactUpTo: number) => Effect.Effect<JobCount, SqlError>
  /** Cancels the next batch of matching jobs that have not finished; answers them with their state before. */
  readonly cancelBatch: (
    filter: Filter,
    after: number,
    size: number,
    now: Date,
  ) => Effect.Effect<BatchResult<{ readonly previous: JobState; readonly record: JobRecord }>, SqlError>
  /** Makes the next batch of matching jobs that are not running available now. */
  readonly retryBatch: (
    filter: Filter,
    after: number,
    size: number,
    now: Date,
  ) => Effect.Effect<BatchResult<{ readonly id: number; readonly queue: string }>, SqlError>
  /** Discards the next batch of matching jobs that wait to run (scheduled, available, retryable). */
  readonly discardBatch: (
    filter: Filter,
    after: number,
    size: number,
    now: Date,
  ) => Effect.Effect<BatchResult<{ readonly id: number }>, SqlError>
  /** Deletes the next batch of matching jobs that are not executing. */
  readonly deleteBatch: (
    filter: Filter,
    after: number,
    size: number,
  ) => Effect.Effect<BatchResult<{ readonly id: number }>, SqlError>
}

const list = <A>(value: A | ReadonlyArray<A>): ReadonlyArray<A> =>
  Array.isArray(value) ? value : [value as A]

/** A text[] literal: every element quoted, so any text is safe in it. */
const textArray = (values: ReadonlyArray<string>) =>
  `{${values.map((v) => `"${v.replace(/\\/g, "\\\\").replace(/"/g, '\\"')}"`).join(",")}}`

const finishedAt = "COALESCE(completed_at, cancelled_at, discarded_at)"

/**
 * An error message as the pattern its group goes by: UUIDs written `<uuid>`, every run of
 * digits `N`, at most 200 characters. "order 1234 failed" and "order 98 failed" are one group.
 */
export const messagePattern = (message: string) =>
  `left(regexp_replace(regexp_replace(${message},
     '[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}', '<uuid>', 'g'),
     '[0-9]+', 'N', 'g'), 200)`

/**
 * The filter as SQL conditions, its values appended to `params`. Values a column is compared
 * with are parameters the planner sees (a list is one array literal, not a subquery): a filter
 * on a rare state or a single queue then finds its rows through an index rather than walking
 * the whole table.
 */
export const filterConditions = (filter: Filter, params: Array<unknown>): Array<string> => {
  const conditions: Array<string> = []
  const param = (value: unknown, cast = "") => {
    params.push(value)
    return `$${params.length}${cast}`
  }
  const oneOf = (column: string, value: string | ReadonlyArray<string> | undefined) => {
    if (value === undefined) return
    const values = list(value)
    conditions.push(
      values.length === 1
        ? `${column} = ${param(values[0])}`
        : `${column} = ANY (${param(textArray(values), "::text[]")})`,
    )
  }
  const range = (column: string, span: Filter["inserted"]) => {
    if (span?.from !== undefined)
      conditions.push(`${column} >= ${param(span.from.toISOString(), "::timestamptz")}`)
    if (span?.to !== undefined)
      conditions.push(`${column} < ${param(span.to.toISOString(), "::timestamptz")}`)
  }
  oneOf("queue", filter.queue)
  oneOf("state", filter.state)
  oneOf("type", filter.type)
  // Containment is what the GIN indexes on args and meta (jsonb_path_ops) answer. The args
  // index holds the off-path states only (migration 15): the planner uses it when the filter's
  // states, which it plans with their values, are among them.
  if (filter.args !== undefined) conditions.push(`args @> ${param(JSON.stringify(filter.args), "::jsonb")}`)
  // The meta index leaves out empty meta (migration 18); the extra condition, true of every
  // job a non-empty containment matches, lets the planner use it.
  const nonEmptyMeta = `meta <> '{}'::jsonb`
  if (filter.meta !== undefined && Object.keys(filter.meta).length > 0)
    conditions.push(nonEmptyMeta, `meta @> ${param(JSON.stringify(filter.meta), "::jsonb")}`)
  // A cron schedule's jobs carry its name in meta.schedule.
  if (filter.schedule !== undefined)
    conditions.push(
      nonEmptyMeta,
      `meta @> ${param(JSON.stringify({ schedule: filter.schedule }), "::jsonb")}`,
    )
  if (filter.resource !== undefined) {
    oneOf("resource_type", filter.resource.type)
    if (filter.resource.id !== undefined) oneOf("resource_id", filter.resource.id)
  }
  oneOf("attempted_by", filter.node)
  if (filter.error !== undefined) {
    conditions.push(
      `errors <> '[]'::jsonb AND EXISTS (SELECT 1 FROM jsonb_array_elements(errors) e
         WHERE strpos(lower(concat(e ->> 'tag', ': ', e ->> 'message')), lower(${param(filter.error)})) > 0)`,
    )
  }
  if (filter.errorGroup !== undefined) {
    conditions.push(
      `errors <> '[]'::jsonb`,
      `COALESCE(errors -> -1 ->> 'tag', '') = ${param(filter.errorGroup.tag)}`,
      `${messagePattern("COALESCE(errors -> -1 ->> 'message', '')")} = ${param(filter.errorGroup.pattern)}`,
    )
  }
  range("inserted_at", filter.inserted)
  range("scheduled_at", filter.scheduled)
  if (filter.finished !== undefined) {
    conditions.push(`state IN ('completed', 'cancelled', 'discarded')`)
    range(finishedAt, filter.finished)
  }
  return conditions
}

const where = (conditions: ReadonlyArray<string>) =>
  conditions.length === 0 ? "" : `WHERE ${conditions.join(" AND ")}`

/** The page statement: keyset on the id, so a page reads its own rows and not the ones before. */
export const pageStatement = (
  jobs: string,
  query: PageQuery,
): { readonly text: string; readonly params: ReadonlyArray<unknown> } => {
  const params: Array<unknown> = []
  const conditions = filterConditions(query.filter, params)
  const newest = query.order === "newest"
  if (query.after !== undefined) {
    params.push(query.after)
    conditions.push(`id ${newest ? "<" : ">"} $${params.length}`)
  }
  params.push(query.limit)
  let text = `SELECT ${columns} FROM ${jobs} ${where(conditions)} ORDER BY id ${newest ? "DESC" : "ASC"} LIMIT $${params.length}`
  if (query.offset !== undefined && query.offset > 0) {
    params.push(query.offset)
    text += ` OFFSET $${params.length}`
  }
  return { text, params }
}

/** The states each bulk action applies to, as the single-job actions do. */
const cancellable: ReadonlyArray<JobState> = ["scheduled", "available", "retryable", "executing"]
const retryable: ReadonlyArray<JobState> = ["scheduled", "retryable", "completed", "discarded", "cancelled"]
const discardable: ReadonlyArray<JobState> = ["scheduled", "available", "retryable"]
const deletable: ReadonlyArray<JobState> = [
  "scheduled",
  "available",
  "retryable",
  "completed",
  "discarded",
  "cancelled",
]

/** The planner's estimate of the rows an `EXPLAIN (FORMAT JSON)` plan answers. */
export const plannedRows = (plan: ReadonlyArray<{ "QUERY PLAN": unknown }>) => {
  const parsed = plan[0]!["QUERY PLAN"]
  return Math.round(Number((typeof parsed === "string" ? JSON.parse(parsed) : parsed)[0].Plan["Plan Rows"]))
}

/** Jobs matching a filter, counted exactly up to `exactUpTo` and estimated past it. */
const countJobs =
  ({ sql, jobs }: StoreContext) =>
  (filter: Filter, exactUpTo: number) =>
    Effect.gen(function* () {
      const params: Array<unknown> = []
      const conditions = where(filterConditions(filter, params))
      // Counting stops one row past the threshold: a count never reads more than that.
      const [row] = yield* sql.unsafe<{ count: number }>(
        `SELECT count(*)::integer AS count FROM (SELECT 1 FROM ${jobs} ${conditions} LIMIT $${params.length + 1}) x`,
        [...params, exactUpTo + 1],
      )
      const counted = Number(row!.count)
      if (counted <= exactUpTo) return { count: counted, estimated: false }
      const plan = yield* sql.unsafe<{ "QUERY PLAN": unknown }>(
        `EXPLAIN (FORMAT JSON) SELECT 1 FROM ${jobs} ${conditions}`,
        params,
      )
      // The estimate never goes below what was counted.
      return { count: Math.max(counted, plannedRows(plan)), estimated: true }
    })

export const make = (context: StoreContext): JobQueryStore => {
  const { sql, jobs } = context
  const listJobs = (query: PageQuery) => {
    const { text, params } = pageStatement(jobs, query)
    return Effect.map(sql.unsafe(text, params), (rows) => rows.map(recordFromRow))
  }

  /**
   * The next `size` ids past `after` that match and are in one of `states`. The action then
   * re-checks the state of each row it locks, so a job that moved on meanwhile is left alone.
   */
  const nextIds = (filter: Filter, states: ReadonlyArray<JobState>, after: number, size: number) => {
    const params: Array<unknown> = []
    const conditions = filterConditions(filter, params)
    params.push(textArray(states), after, size)
    const n = params.length
    conditions.push(`state = ANY ($${n - 2}::text[])`, `id > $${n - 1}`)
    return Effect.map(
      sql.unsafe<{ id: string }>(
        `SELECT id FROM ${jobs} ${where(conditions)} ORDER BY id LIMIT $${n}`,
        params,
      ),
      (rows) => rows.map((r) => Number(r.id)),
    )
  }

  /** Selects a batch, then applies `act` to its ids. */
  const batch =
    <A>(
      states: ReadonlyArray<JobState>,
      act: (ids: ReadonlyArray<number>) => Effect.Effect<ReadonlyArray<A>, SqlError>,
    ) =>
    (filter: Filter, after: number, size: number): Effect.Effect<BatchResult<A>, SqlError> =>
      Effect.gen(function* () {
        const ids = yield* nextIds(filter, states, after, size)
        if (ids.length === 0) return { last: undefined, selected: 0, changed: [] }
        return { last: ids[ids.length - 1], selected: ids.length, changed: yield* act(ids) }
      })

  const idArray = (ids: ReadonlyArray<number>) => `{${ids.join(",")}}`

  const cancelBatch = (filter: Filter, after: number, size: number, now: Date) =>
    batch(cancellable, (ids) =>
      Effect.map(
        sql.unsafe<any>(
          `WITH before AS (
             SELECT id, state FROM ${jobs} WHERE id = ANY ($1::bigint[]) AND state = ANY ($2::text[]) FOR UPDATE
           )
           UPDATE ${jobs} j SET state = 'cancelled', cancelled_at = $3::timestamptz, lease = NULL
           FROM before WHERE j.id = before.id
           RETURNING before.state AS previous, ${columns.replace(/(\w+)/g, "j.$1")}`,
          [idArray(ids), textArray(cancellable), now.toISOString()],
        ),
        (rows) => rows.map((row) => ({ previous: row.previous as JobState, record: recordFromRow(row) })),
      ),
    )(filter, after, size)

  // As a retry by hand: one more attempt for a job that used all of its own.
  const retrySet = `state = 'available', scheduled_at = $3::timestamptz,
    max_attempts = GREATEST(max_attempts, attempt + 1), completed_at = NULL, cancelled_at = NULL, discarded_at = NULL`
  const retryIds = (ids: ReadonlyArray<number>, now: Date) =>
    sql.unsafe<{ id: string; queue: string }>(
      `UPDATE ${jobs} SET ${retrySet} WHERE id = ANY ($1::bigint[]) AND state = ANY ($2::text[]) RETURNING id, queue`,
      [idArray(ids), textArray(retryable), now.toISOString()],
    )
  const isUniqueViolation = (error: SqlError) =>
    (error.cause as { code?: unknown } | undefined)?.code === "23505"

  const retryBatch = (filter: Filter, after: number, size: number, now: Date) =>
    batch(retryable, (ids) =>
      retryIds(ids, now).pipe(
        // A unique job whose key another job holds now cannot be made available; it fails the
        // whole statement, so that batch goes again one job at a time, leaving such jobs as they are.
        Effect.catchIf(isUniqueViolation, () =>
          Effect.map(
            Effect.forEach(ids, (id) =>
              retryIds([id], now).pipe(Effect.catchIf(isUniqueViolation, () => Effect.succeed([]))),
            ),
            (rows) => rows.flat(),
          ),
        ),
        Effect.map((rows) => rows.map((r) => ({ id: Number(r.id), queue: r.queue }))),
      ),
    )(filter, after, size)

  const discardBatch = (filter: Filter, after: number, size: number, now: Date) =>
    batch(discardable, (ids) =>
      Effect.map(
        sql.unsafe<{ id: string }>(
          `UPDATE ${jobs} SET state = 'discarded', discarded_at = $3::timestamptz
           WHERE id = ANY ($1::bigint[]) AND state = ANY ($2::text[]) RETURNING id`,
          [idArray(ids), textArray(discardable), now.toISOString()],
        ),
        (rows) => rows.map((r) => ({ id: Number(r.id) })),
      ),
    )(filter, after, size)

  const deleteBatch = (filter: Filter, after: number, size: number) =>
    batch(deletable, (ids) =>
      Effect.map(
        sql.unsafe<{ id: string }>(
          `DELETE FROM ${jobs} WHERE id = ANY ($1::bigint[]) AND state = ANY ($2::text[]) RETURNING id`,
          [idArray(ids), textArray(deletable)],
        ),
        (rows) => rows.map((r) => ({ id: Number(r.id) })),
      ),
    )(filter, after, size)

  return { listJobs, countJobs: countJobs(context), cancelBatch, retryBatch, discardBatch, deleteBatch }
}
