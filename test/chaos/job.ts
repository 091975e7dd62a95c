import type { SqlClient } from "@effect/sql/SqlClient"
import { Effect, Random, Schema } from "effect"
import * as Job from "../../src/Job.js"

const ChaosArgs = Schema.Struct({
  n: Schema.Number,
  minMillis: Schema.Number,
  maxMillis: Schema.Number,
  poison: Schema.optional(Schema.Boolean),
  /** Sleeps uninterruptibly, as a handler blocked in a call it cannot leave does. */
  stubborn: Schema.optional(Schema.Boolean),
})

/** The crash suite's job: sleeps a while, or kills its process when `poison`. */
export const Chaos = Job.make("chaos", {
  args: ChaosArgs,
  queue: "chaos",
  maxAttempts: 25,
  backoff: "100 millis",
})

/**
 * The same with a result, the node and process that ran it: its completion goes through the
 * outcome write that carries results, where a plain `Chaos` completion has its own.
 */
export const ChaosWithResult = Job.make("chaos-result", {
  args: ChaosArgs,
  queue: "chaos",
  maxAttempts: 25,
  backoff: "100 millis",
  result: Schema.Struct({ node: Schema.String, pid: Schema.Number }),
})

/** A handler's ledger row (see createLedger in harness.ts): `start` first thing, `end` as its last statement. */
export const ledgerWrite = (
  sql: SqlClient,
  schema: string,
  event: "start" | "end",
  job: { readonly id: number; readonly attempt: number; readonly attemptedBy: string | null },
) =>
  sql.unsafe(`INSERT INTO ${schema}.ledger (job_id, attempt, node, pid, event) VALUES ($1, $2, $3, $4, $5)`, [
    job.id,
    job.attempt,
    job.attemptedBy ?? "",
    process.pid,
    event,
  ])

/**
 * The crash suite's handler body: `start` in the ledger, the poison's exit, a sleep of
 * `millis` (the args' range when not given), `end` in the ledger; answers who ran it.
 */
export const chaosRun = (
  sql: SqlClient,
  schema: string,
  args: typeof ChaosArgs.Type,
  job: { readonly id: number; readonly attempt: number; readonly attemptedBy: string | null },
  millis?: number,
) =>
  Effect.gen(function* () {
    yield* ledgerWrite(sql, schema, "start", job)
    // The poison job takes its whole process down with it.
    if (args.poison) return yield* Effect.sync(() => process.exit(3))
    const sleep =
      millis ?? args.minMillis + (yield* Random.nextIntBetween(0, args.maxMillis - args.minMillis + 1))
    yield* args.stubborn ? Effect.uninterruptible(Effect.sleep(sleep)) : Effect.sleep(sleep)
    yield* ledgerWrite(sql, schema, "end", job)
    return { node: job.attemptedBy ?? "", pid: process.pid }
  })
