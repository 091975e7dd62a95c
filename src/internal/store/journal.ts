/**
 * What a handler reports while it runs: its progress and its log lines, written to its job's
 * row while the attempt still holds it.
 */
import type { SqlError } from "@effect/sql/SqlError"
import { Effect } from "effect"
import type { StoreContext } from "./context.js"

/** The most log lines a job keeps: older ones are dropped as newer ones arrive. */
export const maxLogLines = 100
/** A longer log line is cut at this many characters. */
export const maxLogLineLength = 2000

/** Progress and log lines of one attempt, as written together. */
export interface JournalEntry {
  readonly id: number
  readonly attempt: number
  /** The newest progress, if any was reported since the last write. */
  readonly progress: { readonly percent: number; readonly note: string | null; readonly at: Date } | undefined
  readonly lines: ReadonlyArray<{ readonly at: Date; readonly message: string }>
}

export interface JournalStore {
  /**
   * Writes an attempt's progress and appends its lines to the job's log, keeping the newest
   * `maxLogLines`; only while that attempt is executing. Answers whether it applied.
   */
  readonly writeJournal: (entry: JournalEntry) => Effect.Effect<boolean, SqlError>
}

export const make = ({ jobs, unprepared }: StoreContext): JournalStore => {
  const text = `UPDATE ${jobs} SET
      progress = COALESCE($3::jsonb, progress),
      logs = CASE WHEN jsonb_array_length($4::jsonb) = 0 THEN logs ELSE (
        SELECT COALESCE(jsonb_agg(line ORDER BY n), '[]'::jsonb) FROM (
          SELECT line, n FROM jsonb_array_elements(logs || $4::jsonb) WITH ORDINALITY AS t(line, n)
          ORDER BY n DESC LIMIT ${maxLogLines}
        ) kept
      ) END
    WHERE id = $1 AND attempt = $2 AND state = 'executing'
    RETURNING id`
  return {
    writeJournal: ({ id, attempt, progress, lines }) =>
      Effect.map(
        unprepared<{ id: string }>(text, [
          id,
          attempt,
          progress === undefined
            ? null
            : JSON.stringify({ attempt, percent: progress.percent, note: progress.note, at: progress.at }),
          JSON.stringify(
            lines.slice(-maxLogLines).map((line) => ({ attempt, at: line.at, message: line.message })),
          ),
        ]),
        (rows) => rows.length > 0,
      ),
  }
}
