/**
 * What every table module of the store shares: the client, the schema's table names, and the
 * ways a statement can run (prepared or not).
 */
import { type SqlClient, TransactionConnection } from "@effect/sql/SqlClient"
import type { SqlError } from "@effect/sql/SqlError"
import { Effect, Option } from "effect"
import { signalChannel } from "./migrations.js"
import type { PreparedStatements } from "./prepared.js"

/** Runs one statement and answers its rows. */
export type Run = <A>(
  text: string,
  values: ReadonlyArray<unknown>,
) => Effect.Effect<ReadonlyArray<A>, SqlError>

export interface StoreContext {
  readonly sql: SqlClient
  readonly schema: string
  /** `schema.jobs`. */
  readonly jobs: string
  /** The channel every signal of this schema goes to. */
  readonly channel: string
  /** With `keepCompleted` false (retention of completed jobs zero), a completion deletes its job. */
  readonly keepCompleted: boolean
  /** Through the SqlClient, inside the caller's transaction if there is one. */
  readonly unprepared: Run
  /** The statements every job goes through: prepared when the store has prepared statements. */
  readonly hot: Run
  /** Prepared outside a transaction; through the SqlClient inside one. */
  readonly preparedOutsideTransaction: Run
}

export const makeContext = (
  sql: SqlClient,
  schema: string,
  prepared: PreparedStatements["Type"] | undefined,
  keepCompleted: boolean,
): StoreContext => {
  const unprepared: Run = <A>(text: string, values: ReadonlyArray<unknown>) =>
    sql.unsafe<A & object>(text, values)
  // An insert belongs to the caller's transaction when there is one, and only the SqlClient
  // knows its connection. Outside one, the prepared path saves the statement's parsing and
  // planning and @effect/sql's own overhead, a sizeable part of a single insert.
  const preparedOutsideTransaction: Run =
    prepared === undefined
      ? unprepared
      : <A>(text: string, values: ReadonlyArray<unknown>) =>
          Effect.flatMap(Effect.serviceOption(TransactionConnection), (transaction) =>
            Option.isSome(transaction) ? unprepared<A>(text, values) : prepared.query<A>(text, values),
          )
  return {
    sql,
    schema,
    jobs: `${schema}.jobs`,
    channel: signalChannel(schema),
    keepCompleted,
    unprepared,
    hot: prepared === undefined ? unprepared : prepared.query,
    preparedOutsideTransaction,
  }
}
