/**
 * The caller's transaction as PostgreSQL knows it: its id, and later whether it committed. An
 * insert made inside an app's transaction is announced only once that transaction committed.
 */
import type { SqlError } from "@effect/sql/SqlError"
import { Effect } from "effect"
import type { StoreContext } from "./context.js"

/** What became of a transaction; `unknown` once PostgreSQL no longer remembers it. */
export type TransactionStatus = "committed" | "aborted" | "in progress" | "unknown"

export interface TransactionsStore {
  /** The id of the transaction the calling fiber is in (its top-level transaction). */
  readonly currentTransaction: Effect.Effect<string, SqlError>
  /** What became of each of these transactions. */
  readonly transactionStatus: (
    ids: ReadonlyArray<string>,
  ) => Effect.Effect<ReadonlyMap<string, TransactionStatus>, SqlError>
}

export const make = ({ unprepared }: StoreContext): TransactionsStore => ({
  currentTransaction: Effect.map(
    unprepared<{ id: string }>(`SELECT txid_current()::text AS id`, []),
    (rows) => rows[0]!.id,
  ),
  transactionStatus: (ids) =>
    Effect.map(
      unprepared<{ id: string; status: string | null }>(
        `SELECT id, txid_status(id::bigint) AS status FROM unnest($1::text[]) AS id`,
        [`{${ids.join(",")}}`],
      ),
      (rows) => new Map(rows.map((row) => [row.id, (row.status ?? "unknown") as TransactionStatus])),
    ),
})
