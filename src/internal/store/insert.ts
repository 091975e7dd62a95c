/**
 * Inserts into the jobs table: a batch in one statement, and unique jobs whose key the unique
 * index guards.
 */
import type { SqlError } from "@effect/sql/SqlError"
import { Effect } from "effect"
import type { JobRecord, JobState } from "../../JobRecord.js"
import type { StoreContext } from "./context.js"
import type { JobsStore, NewJobs } from "./jobs.js"
import { columns, insertedRecord, recordFromRow } from "./records.js"

export const make = ({
  sql,
  jobs,
  preparedOutsideTransaction,
}: StoreContext): Pick<JobsStore, "insert" | "insertUnique"> => {
  // The shared fields are parameters and only the args vary, so the database parses one
  // small JSON array; the ordinality keeps the sequence handing out ids in the order given.
  const insertText = `INSERT INTO ${jobs}
      (queue, type, args, state, priority, max_attempts, meta, scheduled_at, inserted_at, resource_type, resource_id)
    SELECT $1, $2, a.value, $3, $4, $5, $6::jsonb, $7::timestamptz, $8::timestamptz, $9, $10
    FROM jsonb_array_elements($11::jsonb) WITH ORDINALITY AS a(value, ord)
    ORDER BY a.ord
    RETURNING id`

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

  return { insert, insertUnique }
}
