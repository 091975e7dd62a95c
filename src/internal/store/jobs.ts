/**
 * The jobs table on the path every job takes: insert, claim, and write the outcome back. These
 * statements run thousands of times a second, so they are prepared where they can be and take
 * one parameter where they act on many jobs (an array, or JSON read with
 * `jsonb_to_recordset`), so a batch is one round trip.
 */
import type { SqlError } from "@effect/sql/SqlError"
import { Effect } from "effect"
import type { JobRecord, JobState } from "../../JobRecord.js"
import { type ClaimPosition, claimStart } from "../queue/claimPosition.js"
import type { Run, StoreContext } from "./context.js"
import { lockKey } from "./migrations.js"
import { type Outcome, type SerializedOutcome, serializeOutcome } from "./outcomes.js"
import { claimedRecord, columns, insertedRecord, recordFromRow } from "./records.js"

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

export interface QueueLimits {
  /** At most this many jobs of the queue executing across all nodes. */
  readonly global?: number | undefined
  /** At most `limit` attempts started per `periodMillis`, across all nodes. */
  readonly rate?: { readonly limit: number; readonly periodMillis: number } | undefined
}

/** A job of a unique insert: the new record, or the job that holds its key (`conflict: true`). */
export interface UniqueInsert {
  readonly record: JobRecord
  readonly conflict: boolean
}

export interface JobsStore {
  /** Inserts the batch in one statement; answers the records, in the order of `args`. */
  readonly insert: (batch: NewJobs, now: Date) => Effect.Effect<ReadonlyArray<JobRecord>, SqlError>
  /**
   * Inserts the jobs whose key is not taken by a job in one of `states`, in one statement (the
   * unique index settles races); answers, for each job given, what `UniqueInsert` says.
   */
  readonly insertUnique: (
    batch: NewJobs,
    keys: ReadonlyArray<string>,
    states: ReadonlyArray<JobState>,
    now: Date,
  ) => Effect.Effect<ReadonlyArray<UniqueInsert>, SqlError>
  /**
   * Claims up to `limit` available jobs of the queue for `node` under `lease`, of which at most
   * `suspects` were rescued before; the others come after `after` in the claim order.
   */
  readonly claim: (
    queue: string,
    limit: number,
    node: string,
    lease: string,
    now: Date,
    suspects?: number,
    after?: ClaimPosition,
  ) => Effect.Effect<ReadonlyArray<JobRecord>, SqlError>
  /** A claim that respects the queue's cluster-wide limits. */
  readonly claimLimited: (
    queue: string,
    demand: number,
    node: string,
    lease: string,
    now: Date,
    limits: QueueLimits,
    suspects?: number,
  ) => Effect.Effect<ReadonlyArray<JobRecord>, SqlError>
  /**
   * The jobs a claim with this lease took. After a claim failed on a broken connection it is
   * unknown whether it committed; if it did, its jobs are found here instead of being left
   * `executing` with nobody running them.
   */
  readonly claimedWith: (lease: string) => Effect.Effect<ReadonlyArray<JobRecord>, SqlError>
  /** An outcome ready for `finishSerialized`. Throws when it cannot be stored. */
  readonly serialize: (outcome: Outcome, at: Date) => SerializedOutcome
  /** Writes serialized outcomes, each guarded by its lease; answers the ids they applied to. */
  readonly finishSerialized: (
    outcomes: ReadonlyArray<SerializedOutcome>,
  ) => Effect.Effect<ReadonlySet<number>, SqlError>
  /** `serialize` then `finishSerialized`. */
  readonly finish: (
    outcomes: ReadonlyArray<Outcome>,
    now: Date,
  ) => Effect.Effect<ReadonlySet<number>, SqlError>
}

export const make = (ctx: StoreContext): JobsStore => {
  const { sql, schema, jobs, keepCompleted, unprepared, hot, preparedOutsideTransaction } = ctx
  const starts = `${schema}.queue_starts`
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
    (run: Run) =>
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

  return { insert, insertUnique, claim, claimLimited, claimedWith, serialize, finishSerialized, finish }
}
