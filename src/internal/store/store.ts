/**
 * Every statement effect-jobs runs, for one schema. The same SQL runs on PostgreSQL and on
 * PGlite. Hot statements are prepared once as text and take one parameter where they act on
 * many jobs (a JSON array read with `jsonb_to_recordset`), so a batch is one round trip.
 */
import { type SqlClient, TransactionConnection } from "@effect/sql/SqlClient"
import type { SqlError } from "@effect/sql/SqlError"
import { Effect, Option } from "effect"
import { AttemptError, type JobId, JobRecord, type JobState } from "../../JobRecord.js"
import type { NodeInfo } from "../../Jobs.js"
import * as Json from "../api/json.js"
import { type ClaimPosition, claimStart } from "../queue/claimPosition.js"
import { lockKey, signalChannel } from "./migrations.js"
import type { PreparedStatements } from "./prepared.js"

/** Jobs inserted together: one definition and one set of options, many args. */
export interface NewJobs {
  readonly queue: string
  readonly type: string
  readonly state: "available" | "scheduled"
  readonly priority: number
  readonly maxAttempts: number
  readonly meta: Record<string, unknown>
  readonly scheduledAt: Date
  /** The encoded args of each job. */
  readonly args: ReadonlyArray<unknown>
  /** The same, serialized once: insert measures their size from it and sends it as is. */
  readonly argsJson: ReadonlyArray<string>
  /** The resource every job of the batch is aimed at, if any. */
  readonly resource?: { readonly type: string; readonly id: string } | undefined
}

/** An attempt that succeeded; a class for the reason `PlainCompletion` gives. */
export class Completed {
  readonly kind = "completed"
  constructor(
    readonly id: JobId,
    readonly lease: string,
    readonly result: unknown,
  ) {}
}

export interface ErrorEntry {
  readonly attempt: number
  readonly at: Date
  readonly tag: string
  readonly message: string
  readonly cause: string
}

/** How an attempt ended, as written back to the job. Applied only while `lease` still matches. */
export type Outcome =
  | Completed
  | {
      readonly kind: "retryable"
      readonly id: JobId
      readonly lease: string
      readonly error: ErrorEntry
      readonly retryAt: Date
    }
  | { readonly kind: "discarded"; readonly id: JobId; readonly lease: string; readonly error: ErrorEntry }
  | { readonly kind: "cancelled"; readonly id: JobId; readonly lease: string; readonly error: ErrorEntry }
  /** Back to `scheduled` at `until`, giving the attempt back. */
  | { readonly kind: "snoozed"; readonly id: JobId; readonly lease: string; readonly until: Date }
  /** Back to `available`, giving the attempt back: the node stopped before the job finished. */
  | { readonly kind: "released"; readonly id: JobId; readonly lease: string }
  /** Discarded from its queue and moved, `available` with its attempts reset, to the queue's dead-letter queue. */
  | {
      readonly kind: "deadLettered"
      readonly id: JobId
      readonly lease: string
      readonly error: ErrorEntry
      readonly queue: string
    }

const outcomeState: Record<Outcome["kind"], JobState> = {
  completed: "completed",
  retryable: "retryable",
  discarded: "discarded",
  cancelled: "cancelled",
  snoozed: "scheduled",
  released: "available",
  deadLettered: "available",
}

const encodeError = (e: ErrorEntry) => ({ ...e, at: e.at.toISOString() })

const encodeOutcome = (o: Outcome, at: string) => ({
  id: o.id,
  lease: o.lease,
  state: outcomeState[o.kind],
  attempt_delta: o.kind === "snoozed" || o.kind === "released" ? -1 : 0,
  result: o.kind === "completed" ? o.result : null,
  error: "error" in o ? encodeError(o.error) : null,
  scheduled_at:
    o.kind === "retryable"
      ? o.retryAt.toISOString()
      : o.kind === "snoozed"
        ? o.until.toISOString()
        : o.kind === "deadLettered"
          ? at
          : null,
  dead_letter_queue: o.kind === "deadLettered" ? o.queue : null,
  at,
})

/**
 * A completion with no result: by far the most common outcome, written by a statement of its
 * own that reads three arrays instead of parsing a JSON document per job.
 *
 * A class rather than an object literal, as are the other records that wait for an outcome
 * write: V8 moves the objects of a literal that often outlives a young-generation collection
 * to the old generation from then on, where each one, dead within milliseconds, stays until
 * the next full collection and keeps whatever young objects it points to alive too (see
 * docs/architecture.md, "Memory on the per-job path"). V8 keeps no such record for objects a
 * constructor builds: in our runs all but 0.3 % of them were born young.
 */
export class PlainCompletion {
  constructor(
    readonly id: number,
    readonly lease: string,
    readonly at: string,
  ) {}
}

/** An outcome ready for the finish statements: a plain completion, or JSON for the rest. */
export type SerializedOutcome = PlainCompletion | string

// Outcomes come in bursts that finish within the same millisecond; formatting a date costs
// more than the rest of a plain completion, so the last one is kept.
let lastMillis = Number.NaN
let lastIso = ""
const isoOf = (at: Date): string => {
  const millis = at.getTime()
  if (millis !== lastMillis) {
    lastIso = at.toISOString()
    lastMillis = millis
  }
  return lastIso
}

/**
 * An outcome as the finish statements read it. Throws when it cannot be stored: a result
 * JSON cannot carry (a BigInt, a cycle, a throwing `toJSON`), a time that is not a valid date.
 * With `keepCompleted` false, completed jobs are deleted rather than kept, so a completion's
 * result has nowhere to go and every completion is a plain one.
 */
const serializeOutcome = (outcome: Outcome, at: Date, keepCompleted = true): SerializedOutcome => {
  if (
    outcome.kind === "completed" &&
    (!keepCompleted || outcome.result === null || outcome.result === undefined)
  ) {
    return new PlainCompletion(outcome.id, outcome.lease, isoOf(at))
  }
  // Text PostgreSQL refuses (a NUL, a lone surrogate) in a result or an error is replaced:
  // refusing the outcome would lose the attempt, and nobody can correct it any more.
  return Json.storable(JSON.stringify(encodeOutcome(outcome, at.toISOString())))
}

export const toDate = (u: unknown): Date => (u instanceof Date ? u : new Date(u as string | number))
export const toDateOrNull = (u: unknown): Date | null => (u === null || u === undefined ? null : toDate(u))

/**
 * Rows come from our own table, so they are trusted. The Schema.Class constructor, even with
 * validation off, merges defaults field by field; on the per-job path that was measurable, so
 * records are built on the class's prototype directly (the constructor only assigns fields),
 * always in the same order so that they share one shape.
 */
const recordPrototype = JobRecord.prototype

const buildRecord = (row: any, claimedAt: Date | undefined, claimedBy: string | undefined): JobRecord => {
  const record = Object.create(recordPrototype)
  record.id = Number(row.id) as JobId
  record.queue = row.queue
  record.type = row.type
  // Both engines hand back json and jsonb parsed; a JSON string value arrives as a JS string.
  record.args = row.args
  record.state = claimedAt === undefined ? row.state : "executing"
  record.priority = Number(row.priority)
  record.attempt = Number(row.attempt)
  record.maxAttempts = Number(row.max_attempts)
  record.rescues = Number(row.rescues ?? 0)
  const errors = row.errors as Array<any>
  record.errors =
    errors.length === 0
      ? errors
      : errors.map((e) => new AttemptError({ ...e, at: toDate(e.at) }, { disableValidation: true }))
  record.result = row.result ?? null
  record.meta = row.meta ?? {}
  record.scheduledAt = toDate(row.scheduled_at)
  record.attemptedAt = claimedAt ?? toDateOrNull(row.attempted_at)
  record.attemptedBy = claimedBy ?? row.attempted_by ?? null
  record.completedAt = toDateOrNull(row.completed_at)
  record.cancelledAt = toDateOrNull(row.cancelled_at)
  record.discardedAt = toDateOrNull(row.discarded_at)
  record.insertedAt = toDate(row.inserted_at)
  record.resourceType = row.resource_type ?? null
  record.resourceId = row.resource_id ?? null
  return record
}

/**
 * A claimed job's record: what the claim returned, plus what it just wrote (known here, so not
 * read back).
 */
const claimedRecord = (row: any, now: Date, node: string): JobRecord => buildRecord(row, now, node)

export const recordFromRow = (row: any): JobRecord => buildRecord(row, undefined, undefined)

export interface QueueLimits {
  /** At most this many jobs of the queue executing across all nodes. */
  readonly global?: number | undefined
  /** At most `limit` attempts started per `periodMillis`, across all nodes. */
  readonly rate?: { readonly limit: number; readonly periodMillis: number } | undefined
}

export type NodeRow = NodeInfo

export interface ListFilter {
  readonly queue?: string | undefined
  readonly state?: JobState | ReadonlyArray<JobState> | undefined
  readonly type?: string | undefined
  readonly limit: number
  readonly offset: number
}

export interface StateSummary {
  readonly state: JobState
  readonly count: number
  readonly oldest: Date | null
  readonly newest: Date | null
}

const columns = `id, queue, type, args, state, priority, attempt, max_attempts, rescues, errors, result, meta, lease,
  scheduled_at, attempted_at, attempted_by, completed_at, cancelled_at, discarded_at, inserted_at, resource_type, resource_id`

/**
 * The listing statement. The states are one array parameter, so the planner sees them: as a
 * subquery they were unknown at planning, and a listing of a rare state (a few discarded jobs
 * among millions completed) walked the whole primary key backwards to find them. Known, they
 * are read through the state or finished index, then sorted.
 */
export const listStatement = (
  schema: string,
  filter: ListFilter,
): { readonly text: string; readonly params: ReadonlyArray<unknown> } => {
  const conditions: Array<string> = []
  const params: Array<unknown> = []
  if (filter.queue !== undefined) {
    params.push(filter.queue)
    conditions.push(`queue = $${params.length}`)
  }
  if (filter.type !== undefined) {
    params.push(filter.type)
    conditions.push(`type = $${params.length}`)
  }
  if (filter.state !== undefined) {
    // Job states are plain words (checked by the caller), so the array literal needs no quoting.
    params.push(`{${(typeof filter.state === "string" ? [filter.state] : filter.state).join(",")}}`)
    conditions.push(`state = ANY ($${params.length}::text[])`)
  }
  params.push(filter.limit, filter.offset)
  const where = conditions.length === 0 ? "" : `WHERE ${conditions.join(" AND ")}`
  return {
    text: `SELECT ${columns} FROM ${schema}.jobs ${where} ORDER BY id DESC LIMIT $${params.length - 1} OFFSET $${params.length}`,
    params,
  }
}

/**
 * The store over `sql`. With `prepared`, the statements every job goes through outside a
 * transaction (insert, claim and finish) run as named prepared statements. With `keepCompleted`
 * false (retention of completed jobs set to zero), a completion deletes its job.
 */
export const make = (
  sql: SqlClient,
  schema: string,
  prepared?: PreparedStatements["Type"],
  keepCompleted = true,
) => {
  const unprepared = <A>(
    text: string,
    values: ReadonlyArray<unknown>,
  ): Effect.Effect<ReadonlyArray<A>, SqlError> => sql.unsafe<A & object>(text, values)
  const hot = prepared === undefined ? unprepared : prepared.query
  // An insert belongs to the caller's transaction when there is one, and only the SqlClient
  // knows its connection. Outside one, the prepared path saves the statement's parsing and
  // planning and @effect/sql's own overhead: 0.15–0.25 ms of a single insert's 1 ms.
  const preparedOutsideTransaction =
    prepared === undefined
      ? unprepared
      : <A>(text: string, values: ReadonlyArray<unknown>): Effect.Effect<ReadonlyArray<A>, SqlError> =>
          Effect.flatMap(Effect.serviceOption(TransactionConnection), (transaction) =>
            Option.isSome(transaction) ? unprepared<A>(text, values) : prepared.query<A>(text, values),
          )
  const jobs = `${schema}.jobs`
  const starts = `${schema}.queue_starts`
  const channel = signalChannel(schema)

  // The shared fields are parameters and only the args vary, so the database parses one
  // small JSON array; the ordinality keeps the sequence handing out ids in the order given.
  const insertText = `INSERT INTO ${jobs}
      (queue, type, args, state, priority, max_attempts, meta, scheduled_at, inserted_at, resource_type, resource_id)
    SELECT $1, $2, a.value, $3, $4, $5, $6::jsonb, $7::timestamptz, $8::timestamptz, $9, $10
    FROM jsonb_array_elements($11::jsonb) WITH ORDINALITY AS a(value, ord)
    ORDER BY a.ord
    RETURNING id`

  // The claim itself is the claim_jobs function (migration 7): its plan must not follow the
  // table's statistics, and it commits without waiting for the WAL flush. Its timestamps come
  // as whole epoch milliseconds (exact: numeric arithmetic, then an integral float8), since a
  // number is parsed far more cheaply than a timestamp's text and a claim returns thousands
  // of rows.
  const claimText = `SELECT id, queue, type, args, priority, attempt, max_attempts, rescues, errors, result, meta,
      floor(extract(epoch FROM scheduled_at) * 1000)::float8 AS scheduled_at,
      floor(extract(epoch FROM inserted_at) * 1000)::float8 AS inserted_at,
      resource_type, resource_id
    FROM ${schema}.claim_jobs($1, $2::integer, $3::timestamptz, $4, $5::uuid, $6::integer,
      $7::integer, $8::timestamptz, $9::bigint)`

  // The outcome writers are functions (migration 10) so that their plans do not follow the
  // table's statistics or a plan cached while the table was small. Each answers the ids it
  // applied to: those whose lease still held.
  const finishText = `SELECT id FROM ${schema}.finish_jobs($1::jsonb) AS id`
  const finishCompletedText = `SELECT id FROM ${schema}.complete_jobs($1::bigint[], $2::uuid[], $3::timestamptz[]) AS id`
  const finishDeletedText = `SELECT id FROM ${schema}.delete_jobs($1::bigint[], $2::uuid[]) AS id`

  // Promotes due jobs and wakes each queue that got work, in one statement. The signal says
  // where the jobs are, as the insert trigger's does (migration 12; a migration's text is
  // frozen, so the two are written out apart).
  const stageText = `WITH due AS (
      SELECT id FROM ${jobs}
      WHERE state IN ('scheduled', 'retryable') AND scheduled_at <= $1::timestamptz
      ORDER BY scheduled_at, id
      LIMIT $2
      FOR UPDATE SKIP LOCKED
    ), promoted AS (
      UPDATE ${jobs} j SET state = 'available' FROM due WHERE j.id = due.id
      RETURNING j.queue, j.priority, j.scheduled_at
    )
    SELECT queue, count(*)::integer AS count,
      pg_notify('${channel}', json_build_object('kind', 'insert', 'queue', queue, 'priority', min(priority),
        'at', CASE WHEN isfinite(min(scheduled_at)) THEN floor(extract(epoch FROM min(scheduled_at)) * 1000)::float8 END
      )::text) AS notified
    FROM promoted GROUP BY queue`

  /**
   * Everything in an inserted job's record but its id is what was just sent. Built field by
   * field in buildRecord's order: a bulk insert builds thousands at once.
   */
  const insertedRecord = (batch: NewJobs, args: unknown, id: number, now: Date): JobRecord => {
    const record = Object.create(recordPrototype)
    record.id = id as JobId
    record.queue = batch.queue
    record.type = batch.type
    record.args = args
    record.state = batch.state
    record.priority = batch.priority
    record.attempt = 0
    record.maxAttempts = batch.maxAttempts
    record.rescues = 0
    record.errors = []
    record.result = null
    record.meta = batch.meta
    record.scheduledAt = batch.scheduledAt
    record.attemptedAt = null
    record.attemptedBy = null
    record.completedAt = null
    record.cancelledAt = null
    record.discardedAt = null
    record.insertedAt = now
    record.resourceType = batch.resource?.type ?? null
    record.resourceId = batch.resource?.id ?? null
    return record
  }

  const sharedParams = (batch: NewJobs, now: Date) => [
    batch.queue,
    batch.type,
    batch.state,
    batch.priority,
    batch.maxAttempts,
    JSON.stringify(batch.meta),
    batch.scheduledAt.toISOString(),
    now.toISOString(),
    batch.resource?.type ?? null,
    batch.resource?.id ?? null,
  ]

  const insert = (batch: NewJobs, now: Date): Effect.Effect<ReadonlyArray<JobRecord>, SqlError> =>
    batch.args.length === 0
      ? Effect.succeed([])
      : Effect.map(
          preparedOutsideTransaction<{ readonly id: string }>(insertText, [
            ...sharedParams(batch, now),
            `[${batch.argsJson.join(",")}]`,
          ]),
          (rows) => {
            const ids = rows.map((row) => Number(row.id)).sort((a, b) => a - b)
            return batch.args.map((args, i) => insertedRecord(batch, args, ids[i]!, now))
          },
        )

  const insertUniqueText = `INSERT INTO ${jobs}
      (queue, type, args, state, priority, max_attempts, meta, scheduled_at, inserted_at, resource_type, resource_id,
       unique_key, unique_states)
    SELECT $1, $2, x.args, $3, $4, $5, $6::jsonb, $7::timestamptz, $8::timestamptz, $9, $10, x.unique_key,
      ARRAY(SELECT jsonb_array_elements_text($12::jsonb))
    FROM ROWS FROM (jsonb_to_recordset($11::jsonb) AS (args jsonb, unique_key text)) WITH ORDINALITY AS x(args, unique_key, ord)
    ORDER BY x.ord
    ON CONFLICT (unique_key) WHERE unique_key IS NOT NULL AND state = ANY (unique_states) DO NOTHING
    RETURNING id, unique_key`

  /**
   * Inserts the jobs whose key is not taken, in one statement (the unique index settles
   * races), and answers, for each job given, either the new record or the existing job that
   * holds its key (`conflict: true`).
   */
  const insertUnique = (
    batch: NewJobs,
    keys: ReadonlyArray<string>,
    states: ReadonlyArray<JobState>,
    now: Date,
  ): Effect.Effect<ReadonlyArray<{ readonly record: JobRecord; readonly conflict: boolean }>, SqlError> =>
    Effect.gen(function* () {
      if (batch.args.length === 0) return []
      const inserted = yield* preparedOutsideTransaction<{
        readonly id: string
        readonly unique_key: string
      }>(insertUniqueText, [
        ...sharedParams(batch, now),
        `[${batch.argsJson.map((args, i) => `{"args":${args},"unique_key":${JSON.stringify(keys[i])}}`).join(",")}]`,
        JSON.stringify(states),
      ])
      const created = new Map<string, JobRecord>()
      const firstWithKey = new Map<string, number>()
      keys.forEach((key, i) => {
        if (!firstWithKey.has(key)) firstWithKey.set(key, i)
      })
      for (const row of inserted) {
        const i = firstWithKey.get(row.unique_key)!
        created.set(row.unique_key, insertedRecord(batch, batch.args[i], Number(row.id), now))
      }
      const missing = keys.filter((key) => !created.has(key))
      const existing = new Map<string, JobRecord>()
      if (missing.length > 0) {
        const rows = yield* sql.unsafe<any>(
          `SELECT ${columns}, unique_key FROM ${jobs}
           WHERE unique_key IN (SELECT jsonb_array_elements_text($1::jsonb)) AND state = ANY (unique_states)`,
          [JSON.stringify(missing)],
        )
        for (const row of rows) existing.set(row.unique_key, recordFromRow(row))
      }
      const results: Array<{ readonly record: JobRecord; readonly conflict: boolean } | undefined> = keys.map(
        (key, i) => {
          const mine = created.get(key)
          if (mine !== undefined && firstWithKey.get(key) === i) return { record: mine, conflict: false }
          // Taken by another job, or by an earlier job of this same batch.
          const holder = mine ?? existing.get(key)
          return holder === undefined ? undefined : { record: holder, conflict: true }
        },
      )
      // A holder that left the blocking states between the two statements frees its key:
      // those jobs are inserted again.
      const retry = results.flatMap((result, i) => (result === undefined ? [i] : []))
      if (retry.length > 0) {
        const again = yield* insertUnique(
          { ...batch, args: retry.map((i) => batch.args[i]), argsJson: retry.map((i) => batch.argsJson[i]!) },
          retry.map((i) => keys[i]!),
          states,
          now,
        )
        retry.forEach((i, n) => {
          results[i] = again[n]
        })
      }
      return results as ReadonlyArray<{ readonly record: JobRecord; readonly conflict: boolean }>
    })

  /**
   * Claims up to `limit` jobs, of which at most `suspects` were rescued before; the others
   * come after `after` in the claim order.
   */
  const claimThrough =
    (run: typeof unprepared) =>
    (
      queue: string,
      limit: number,
      node: string,
      lease: string,
      now: Date,
      suspects = 1,
      after: ClaimPosition = claimStart,
    ): Effect.Effect<ReadonlyArray<JobRecord>, SqlError> =>
      Effect.map(
        run<any>(claimText, [
          queue,
          limit,
          now.toISOString(),
          node,
          lease,
          Math.min(suspects, limit),
          after.priority,
          Number.isFinite(after.at)
            ? new Date(after.at).toISOString()
            : after.at > 0
              ? "infinity"
              : "-infinity",
          after.id,
        ]),
        (rows) =>
          rows
            .map((row) => claimedRecord(row, now, node))
            .sort((a, b) => a.priority - b.priority || a.id - b.id),
      )

  const claim = claimThrough(hot)

  /**
   * A claim that respects cluster-wide limits: at most `global` jobs of the queue executing
   * across all nodes, and at most `rate.limit` attempts started per `rate.periodMillis`.
   * Claims of the queue take turns on an advisory lock, and the counts are read after the
   * lock is held (a fresh snapshot), so racing nodes cannot both see room that is not there.
   * A rate-limited claim records how many attempts it started (queue_starts, migration 9) and
   * drops the records that have left the window.
   */
  const claimLimited = (
    queue: string,
    demand: number,
    node: string,
    lease: string,
    now: Date,
    limits: QueueLimits,
    suspects = 1,
  ): Effect.Effect<ReadonlyArray<JobRecord>, SqlError> =>
    sql.withTransaction(
      Effect.gen(function* () {
        yield* sql.unsafe(`SELECT pg_advisory_xact_lock(${lockKey(`${schema}:queue:${queue}`)})`)
        const windowStart = new Date(now.getTime() - (limits.rate?.periodMillis ?? 0)).toISOString()
        const [counts] = yield* sql.unsafe<{ executing: number; started: number }>(
          `SELECT
             (SELECT count(*) FROM ${jobs} WHERE queue = $1 AND state = 'executing')::integer AS executing,
             (SELECT coalesce(sum(count), 0) FROM ${starts} WHERE queue = $1 AND started_at > $2::timestamptz)::integer
               AS started`,
          [queue, windowStart],
        )
        let allowed = demand
        if (limits.global !== undefined)
          allowed = Math.min(allowed, limits.global - Number(counts!.executing))
        if (limits.rate !== undefined)
          allowed = Math.min(allowed, limits.rate.limit - Number(counts!.started))
        if (allowed <= 0) return []
        // Inside the transaction that holds the lock, so never through `prepared`'s own connections.
        const claimed = yield* claimThrough(unprepared)(queue, allowed, node, lease, now, suspects)
        if (limits.rate !== undefined)
          yield* sql.unsafe(
            `WITH expired AS (DELETE FROM ${starts} WHERE queue = $1 AND started_at <= $2::timestamptz)
             INSERT INTO ${starts} (queue, started_at, count)
             SELECT $1, $3::timestamptz, $4::integer WHERE $4::integer > 0`,
            [queue, windowStart, now.toISOString(), claimed.length],
          )
        return claimed
      }),
    )

  /**
   * The jobs a claim with this lease took. After a claim failed on a broken connection it is
   * unknown whether it committed; if it did, its jobs are found here instead of being left
   * `executing` with nobody running them.
   */
  const claimedWith = (lease: string): Effect.Effect<ReadonlyArray<JobRecord>, SqlError> =>
    Effect.map(
      sql.unsafe(`SELECT ${columns} FROM ${jobs} WHERE lease = $1::uuid AND state = 'executing'`, [lease]),
      (rows) => rows.map(recordFromRow).sort((a, b) => a.priority - b.priority || a.id - b.id),
    )

  /**
   * Writes outcomes serialized with `serializeOutcome`: plain completions in one statement,
   * the rest in another, each guarded by the lease. Answers the ids they applied to.
   */
  const finishSerialized = (
    outcomes: ReadonlyArray<SerializedOutcome>,
  ): Effect.Effect<ReadonlySet<number>, SqlError> =>
    Effect.suspend(() => {
      const ids: Array<number> = []
      const leases: Array<string> = []
      const ats: Array<string> = []
      const documents: Array<string> = []
      for (const outcome of outcomes) {
        if (typeof outcome === "string") documents.push(outcome)
        else {
          ids.push(outcome.id)
          leases.push(outcome.lease)
          ats.push(outcome.at)
        }
      }
      const applied = new Set<number>()
      const collect = (rows: ReadonlyArray<{ id: string }>) => {
        for (const row of rows) applied.add(Number(row.id))
      }
      // Array literals of ids, uuids and ISO times need no quoting.
      const completions =
        ids.length === 0
          ? Effect.void
          : Effect.map(
              keepCompleted
                ? hot<{ id: string }>(finishCompletedText, [
                    `{${ids.join(",")}}`,
                    `{${leases.join(",")}}`,
                    `{${ats.join(",")}}`,
                  ])
                : hot<{ id: string }>(finishDeletedText, [`{${ids.join(",")}}`, `{${leases.join(",")}}`]),
              collect,
            )
      const others =
        documents.length === 0
          ? Effect.void
          : Effect.map(hot<{ id: string }>(finishText, [`[${documents.join(",")}]`]), collect)
      return Effect.as(Effect.zipRight(completions, others), applied)
    })

  /** An outcome ready for `finishSerialized`; throws as `serializeOutcome` does. */
  const serialize = (outcome: Outcome, at: Date): SerializedOutcome =>
    serializeOutcome(outcome, at, keepCompleted)

  const finish = (
    outcomes: ReadonlyArray<Outcome>,
    now: Date,
  ): Effect.Effect<ReadonlySet<number>, SqlError> => finishSerialized(outcomes.map((o) => serialize(o, now)))

  const stage = (now: Date, limit: number) =>
    Effect.map(sql.unsafe<{ queue: string; count: number }>(stageText, [now.toISOString(), limit]), (rows) =>
      rows.map((r) => ({ queue: r.queue, count: Number(r.count) })),
    )

  // The prune_jobs function (migration 11): finished jobs of `state` past `before`, oldest first.
  const prune = (state: JobState, before: Date, limit: number) =>
    Effect.map(
      sql.unsafe<{ count: number }>(
        `SELECT ${schema}.prune_jobs($1, $2::timestamptz, $3::integer) AS count`,
        [state, before.toISOString(), limit],
      ),
      (rows) => Number(rows[0]?.count ?? 0),
    )

  /**
   * Whether the server vacuums on its own: autovacuum on, and its launcher running. PGlite has
   * no launcher, so it never does.
   */
  const autovacuumRuns = Effect.map(
    sql.unsafe<{ runs: boolean }>(
      `SELECT current_setting('autovacuum') = 'on'
         AND EXISTS (SELECT 1 FROM pg_stat_activity WHERE backend_type = 'autovacuum launcher') AS runs`,
    ),
    (rows) => rows[0]?.runs === true,
  )

  /**
   * Reclaims the dead rows of the tables every job, heartbeat and rate-limited claim rewrites,
   * and refreshes their statistics: where nothing vacuums, nothing analyzes either, and every
   * statement but the claim (whose plan is fixed) is planned from them.
   */
  const vacuum = Effect.zipRight(
    sql.unsafe(`VACUUM (ANALYZE) ${jobs}`),
    sql.unsafe(`VACUUM (ANALYZE) ${schema}.nodes, ${starts}`),
  )

  const get = (id: number) =>
    Effect.map(sql.unsafe(`SELECT ${columns} FROM ${jobs} WHERE id = $1`, [id]), (rows) =>
      rows.length === 0 ? undefined : recordFromRow(rows[0]),
    )

  const list = (filter: ListFilter) => {
    const { text, params } = listStatement(schema, filter)
    return Effect.map(sql.unsafe(text, params), (rows) => rows.map(recordFromRow))
  }

  /**
   * Moves a job to `to` if its state is one of `from`, in one statement; answers the row
   * after the change, or the unchanged row (or nothing) when it did not apply.
   */
  const transition = (
    id: number,
    from: ReadonlyArray<JobState>,
    set: string,
    params: ReadonlyArray<unknown>,
  ) =>
    Effect.map(
      sql.unsafe<any>(
        `WITH before AS (SELECT id, state FROM ${jobs} WHERE id = $1 FOR UPDATE),
         changed AS (
           UPDATE ${jobs} j SET ${set} FROM before
           WHERE j.id = before.id AND before.state IN (SELECT jsonb_array_elements_text($2::jsonb))
           RETURNING before.state AS previous, ${columns.replace(/(\w+)/g, "j.$1")}
         )
         SELECT true AS changed, previous, ${columns} FROM changed
         UNION ALL
         SELECT false AS changed, state AS previous, ${columns} FROM ${jobs}
         WHERE id = $1 AND NOT EXISTS (SELECT 1 FROM changed)`,
        [id, JSON.stringify(from), ...params],
      ),
      (rows) =>
        rows.length === 0
          ? undefined
          : {
              changed: Boolean(rows[0].changed),
              previous: rows[0].previous as JobState,
              record: recordFromRow(rows[0]),
            },
    )

  const cancel = (id: number, now: Date) =>
    transition(
      id,
      ["scheduled", "available", "retryable", "executing"],
      `state = 'cancelled', cancelled_at = $3::timestamptz, lease = NULL`,
      [now.toISOString()],
    )

  // A job retried by hand gets one more attempt when it has used all of its own.
  const retry = (id: number, now: Date) =>
    transition(
      id,
      ["scheduled", "retryable", "completed", "discarded", "cancelled"],
      `state = 'available', scheduled_at = $3::timestamptz, max_attempts = GREATEST(j.max_attempts, j.attempt + 1),
       completed_at = NULL, cancelled_at = NULL, discarded_at = NULL`,
      [now.toISOString()],
    )

  const remove = (id: number) =>
    Effect.map(
      sql.unsafe<{ id: string; state: JobState; deleted: boolean }>(
        `WITH target AS (SELECT id, state FROM ${jobs} WHERE id = $1 FOR UPDATE),
         deleted AS (DELETE FROM ${jobs} j USING target WHERE j.id = target.id AND target.state <> 'executing' RETURNING j.id)
         SELECT target.id, target.state, EXISTS (SELECT 1 FROM deleted) AS deleted FROM target`,
        [id],
      ),
      (rows) =>
        rows.length === 0 ? undefined : { state: rows[0]!.state, deleted: Boolean(rows[0]!.deleted) },
    )

  const summarize = (queue: string) =>
    Effect.map(
      sql.unsafe<{ state: JobState; count: number; oldest: unknown; newest: unknown }>(
        `SELECT state, count(*)::integer AS count, min(inserted_at) AS oldest, max(inserted_at) AS newest
         FROM ${jobs} WHERE queue = $1 GROUP BY state`,
        [queue],
      ),
      (rows): ReadonlyArray<StateSummary> =>
        rows.map((r) => ({
          state: r.state,
          count: Number(r.count),
          oldest: toDateOrNull(r.oldest),
          newest: toDateOrNull(r.newest),
        })),
    )

  /** True while the queue still has jobs that are due or running. */
  const hasDueOrRunning = (queue: string) =>
    Effect.map(
      sql.unsafe<{ busy: boolean }>(
        `SELECT EXISTS (SELECT 1 FROM ${jobs} WHERE queue = $1 AND state IN ('available', 'executing')) AS busy`,
        [queue],
      ),
      (rows) => Boolean(rows[0]?.busy),
    )

  const pendingStates = `('scheduled', 'available', 'retryable')`

  /** The jobs aimed at one resource that have not finished, in the order they are due. */
  const resourceJobs = (resourceType: string, resourceId: string) =>
    Effect.map(
      sql.unsafe(
        `SELECT ${columns} FROM ${jobs}
         WHERE resource_type = $1 AND resource_id = $2
           AND state IN ('scheduled', 'available', 'retryable', 'executing')
         ORDER BY scheduled_at, id`,
        [resourceType, resourceId],
      ),
      (rows) => rows.map(recordFromRow),
    )

  /** Cancels every job aimed at the resource that is still waiting; answers them. */
  const cancelResource = (resourceType: string, resourceId: string, now: Date) =>
    Effect.map(
      sql.unsafe(
        `UPDATE ${jobs} SET state = 'cancelled', cancelled_at = $3::timestamptz
         WHERE resource_type = $1 AND resource_id = $2 AND state IN ${pendingStates}
         RETURNING ${columns}`,
        [resourceType, resourceId, now.toISOString()],
      ),
      (rows) => rows.map(recordFromRow).sort((a, b) => a.id - b.id),
    )

  /**
   * Moves every job aimed at the resource that is still waiting to `at`: scheduled when that
   * is later than `now`, available (and its queue woken) otherwise. Attempts are kept.
   */
  const rescheduleResource = (resourceType: string, resourceId: string, at: Date, now: Date) =>
    Effect.map(
      sql.unsafe(
        `WITH moved AS (
           UPDATE ${jobs} SET scheduled_at = $3::timestamptz,
             state = CASE WHEN $3::timestamptz > $4::timestamptz THEN 'scheduled' ELSE 'available' END
           WHERE resource_type = $1 AND resource_id = $2 AND state IN ${pendingStates}
           RETURNING ${columns}
         ), woken AS (
           SELECT pg_notify('${channel}', json_build_object('kind', 'insert', 'queue', queue)::text)
           FROM (SELECT DISTINCT queue FROM moved WHERE state = 'available') q
         )
         SELECT moved.* FROM moved LEFT JOIN (SELECT count(*) FROM woken) w ON true`,
        [resourceType, resourceId, at.toISOString(), now.toISOString()],
      ),
      (rows) => rows.map(recordFromRow).sort((a, b) => a.id - b.id),
    )

  /**
   * The database's time. Times that different nodes compare (heartbeats, the leader's term,
   * rescue, staging) come from here, never from a node's own clock, which may be off.
   */
  const now = Effect.map(
    sql.unsafe<{ now: number }>(`SELECT floor(extract(epoch FROM clock_timestamp()) * 1000)::float8 AS now`),
    (rows) => new Date(Number(rows[0]!.now)),
  )

  /** Registers the node or renews its heartbeat, stamped with the database's time. */
  const heartbeat = (node: Omit<NodeRow, "heartbeatAt">) =>
    sql.unsafe(
      `INSERT INTO ${schema}.nodes (id, host, pid, queues, started_at, heartbeat_at)
       VALUES ($1, $2, $3, $4::jsonb, $5::timestamptz, clock_timestamp())
       ON CONFLICT (id) DO UPDATE SET queues = EXCLUDED.queues, heartbeat_at = EXCLUDED.heartbeat_at`,
      [node.id, node.host, node.pid, JSON.stringify(node.queues), node.startedAt.toISOString()],
    )

  /**
   * Registers a starting node, unless a live node holds its name: one whose heartbeat is within
   * `nodeTimeoutMillis` of the database's clock. True when registered.
   */
  // Heartbeats are stamped by the database's clock, as every time compared between nodes is.
  const registerNode = (node: Omit<NodeRow, "heartbeatAt">, nodeTimeoutMillis: number) =>
    Effect.map(
      sql.unsafe<{ id: string }>(
        `INSERT INTO ${schema}.nodes AS n (id, host, pid, queues, started_at, heartbeat_at)
         VALUES ($1, $2, $3, $4::jsonb, $5::timestamptz, clock_timestamp())
         ON CONFLICT (id) DO UPDATE SET host = EXCLUDED.host, pid = EXCLUDED.pid, queues = EXCLUDED.queues,
           started_at = EXCLUDED.started_at, heartbeat_at = EXCLUDED.heartbeat_at
         WHERE n.heartbeat_at < now() - $6 * interval '1 millisecond'
         RETURNING id`,
        [
          node.id,
          node.host,
          node.pid,
          JSON.stringify(node.queues),
          node.startedAt.toISOString(),
          nodeTimeoutMillis,
        ],
      ),
      (rows) => rows.length > 0,
    )

  /**
   * Jobs left `executing` under a node name by an earlier process of that name, which died:
   * the rescuer takes a name that is heartbeating again for alive, so they are released here,
   * as the rescuer would (a `Rescued` entry, the lease cleared, discarded after `maxRescues`).
   */
  const rescueNode = (node: string, maxRescues: number) =>
    Effect.map(
      sql.unsafe<{ id: string; state: JobState }>(
        `UPDATE ${jobs} j SET
           state = CASE WHEN j.attempt >= j.max_attempts OR j.rescues + 1 >= $2 THEN 'discarded' ELSE 'retryable' END,
           discarded_at = CASE WHEN j.attempt >= j.max_attempts OR j.rescues + 1 >= $2 THEN now() ELSE NULL END,
           scheduled_at = now(),
           rescues = j.rescues + 1,
           lease = NULL,
           errors = j.errors || jsonb_build_array(jsonb_build_object(
             'attempt', j.attempt, 'at', now(), 'tag', 'Rescued',
             'message', 'node ' || $1 || ' stopped while running this attempt (a process of the same name started again)',
             'cause', ''))
         WHERE j.state = 'executing' AND j.attempted_by = $1
         RETURNING j.id, j.state`,
        [node, maxRescues],
      ),
      (rows) => rows.map((r) => ({ id: Number(r.id), state: r.state })),
    )

  const forgetNode = (id: string) => sql.unsafe(`DELETE FROM ${schema}.nodes WHERE id = $1`, [id])

  /** The nodes whose last heartbeat is at most `timeoutMillis` old by the database's clock. */
  const nodes = (timeoutMillis: number) =>
    Effect.map(
      sql.unsafe<any>(
        `SELECT id, host, pid, queues, started_at, heartbeat_at FROM ${schema}.nodes
         WHERE heartbeat_at >= now() - $1::double precision * interval '1 millisecond' ORDER BY started_at, id`,
        [timeoutMillis],
      ),
      (rows): ReadonlyArray<NodeRow> =>
        rows.map((r) => ({
          id: r.id,
          host: r.host,
          pid: Number(r.pid),
          queues: r.queues,
          startedAt: toDate(r.started_at),
          heartbeatAt: toDate(r.heartbeat_at),
        })),
    )

  /**
   * Jobs left `executing` by nodes whose last heartbeat is more than `timeoutMillis` old by
   * the database's clock go back to
   * `retryable` (due now), or to `discarded` when out of attempts or rescued `maxRescues`
   * times; either way a `Rescued` entry is added to their errors and their lease is cleared,
   * so a paused worker that wakes up later cannot write an outcome for them. Dead nodes'
   * rows are removed.
   */
  const rescue = (timeoutMillis: number, maxRescues: number, limit: number) =>
    Effect.gen(function* () {
      const rows = yield* sql.unsafe<{ id: string; state: JobState }>(
        `WITH params AS (
           SELECT now() - $1::double precision * interval '1 millisecond' AS alive_since, now() AS at
         ), orphans AS (
           SELECT id FROM ${jobs}
           WHERE state = 'executing' AND attempted_at < (SELECT alive_since FROM params)
             AND (attempted_by IS NULL OR attempted_by NOT IN (
               SELECT id FROM ${schema}.nodes WHERE heartbeat_at >= (SELECT alive_since FROM params)))
           ORDER BY id LIMIT $3
           FOR UPDATE SKIP LOCKED
         ), decided AS (
           SELECT j.id, (j.attempt >= j.max_attempts OR j.rescues + 1 >= $2) AS give_up
           FROM ${jobs} j JOIN orphans USING (id)
         )
         UPDATE ${jobs} j SET
           state = CASE WHEN d.give_up THEN 'discarded' ELSE 'retryable' END,
           discarded_at = CASE WHEN d.give_up THEN p.at ELSE NULL END,
           scheduled_at = p.at,
           rescues = j.rescues + 1,
           lease = NULL,
           errors = j.errors || jsonb_build_array(jsonb_build_object(
             'attempt', j.attempt, 'at', p.at, 'tag', 'Rescued',
             'message', 'node ' || coalesce(j.attempted_by, '?') || ' stopped heartbeating while running this attempt',
             'cause', ''))
         FROM decided d, params p WHERE j.id = d.id
         RETURNING j.id, j.state`,
        [timeoutMillis, maxRescues, limit],
      )
      yield* sql.unsafe(
        `DELETE FROM ${schema}.nodes WHERE heartbeat_at < now() - $1::double precision * interval '1 millisecond'`,
        [timeoutMillis],
      )
      return rows.map((r) => ({ id: Number(r.id), state: r.state }))
    })

  /**
   * Takes or renews leadership for `termMillis` from the database's time; true when this node
   * holds it.
   */
  const elect = (node: string, termMillis: number) =>
    Effect.map(
      sql.unsafe<{ node: string }>(
        `INSERT INTO ${schema}.leader AS l (name, node, elected_at, expires_at)
         VALUES ('maintenance', $1, clock_timestamp(), clock_timestamp() + $2::double precision * interval '1 millisecond')
         ON CONFLICT (name) DO UPDATE SET
           node = EXCLUDED.node,
           elected_at = CASE WHEN l.node = EXCLUDED.node THEN l.elected_at ELSE EXCLUDED.elected_at END,
           expires_at = EXCLUDED.expires_at
         WHERE l.node = EXCLUDED.node OR l.expires_at < EXCLUDED.elected_at
         RETURNING node`,
        [node, termMillis],
      ),
      (rows) => rows.length === 1,
    )

  const resign = (node: string) => sql.unsafe(`DELETE FROM ${schema}.leader WHERE node = $1`, [node])

  const leader = Effect.map(
    sql.unsafe<{ node: string }>(`SELECT node FROM ${schema}.leader WHERE expires_at >= clock_timestamp()`),
    (rows) => rows[0]?.node ?? null,
  )

  const setPaused = (queue: string, paused: boolean) =>
    sql.unsafe(
      `INSERT INTO ${schema}.queues (name, paused, updated_at) VALUES ($1, $2, now())
       ON CONFLICT (name) DO UPDATE SET paused = EXCLUDED.paused, updated_at = EXCLUDED.updated_at`,
      [queue, paused],
    )

  /**
   * Stores a cluster-wide concurrency for the queue (migration 13). `updated_at` stays the
   * time of the last pause or resume ('-infinity': never), which tells nodes whether one
   * happened since they last looked.
   */
  const setConcurrency = (queue: string, concurrency: number) =>
    sql.unsafe(
      `INSERT INTO ${schema}.queues (name, paused, concurrency, updated_at) VALUES ($1, false, $2, '-infinity')
       ON CONFLICT (name) DO UPDATE SET concurrency = EXCLUDED.concurrency`,
      [queue, concurrency],
    )

  /**
   * The queue's stored cluster-wide state: `concurrency` is null where no scale was stored,
   * `pausedOrResumedAt` (text, to compare) null where no pause or resume was.
   */
  const queueState = (queue: string) =>
    Effect.map(
      sql.unsafe<{ paused: boolean; concurrency: number | null; stamp: string | null }>(
        `SELECT paused, concurrency, CASE WHEN isfinite(updated_at) THEN updated_at::text END AS stamp
         FROM ${schema}.queues WHERE name = $1`,
        [queue],
      ),
      (rows) => {
        const row = rows[0]
        return {
          paused: Boolean(row?.paused),
          concurrency: row === undefined || row.concurrency === null ? null : Number(row.concurrency),
          pausedOrResumedAt: row?.stamp ?? null,
        }
      },
    )

  const isPaused = (queue: string) => Effect.map(queueState(queue), (state) => state.paused)

  /** Whether the job is cancelled as stored: a cancel signal is obeyed only then. */
  const isCancelled = (id: number) =>
    Effect.map(
      sql.unsafe<{ state: JobState }>(`SELECT state FROM ${jobs} WHERE id = $1`, [id]),
      (rows) => rows[0]?.state === "cancelled",
    )

  const signal = (payload: string) => sql.unsafe(`SELECT pg_notify($1, $2)`, [channel, payload])

  return {
    schema,
    channel,
    insert,
    insertUnique,
    claim,
    claimLimited,
    claimedWith,
    finish,
    serialize,
    finishSerialized,
    stage,
    prune,
    autovacuumRuns,
    vacuum,
    get,
    list,
    cancel,
    retry,
    remove,
    summarize,
    hasDueOrRunning,
    resourceJobs,
    cancelResource,
    rescheduleResource,
    heartbeat,
    registerNode,
    rescueNode,
    forgetNode,
    elect,
    resign,
    leader,
    setPaused,
    setConcurrency,
    queueState,
    isPaused,
    isCancelled,
    now,
    nodes,
    rescue,
    signal,
  } as const
}

export type Store = ReturnType<typeof make>
