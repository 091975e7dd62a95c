import { SqlClient } from "@effect/sql"
import { Effect, Schema } from "effect"
import { Job, Jobs } from "effect-jobs"

const SendReceipt = Job.make("send-receipt", { args: Schema.Struct({ orderId: Schema.Number }) })

export const placeOrder = (item: string) =>
  Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    const jobs = yield* Jobs.Jobs
    return yield* sql.withTransaction(
      Effect.gen(function* () {
        const [order] = yield* sql<{ id: number }>`INSERT INTO orders (item) VALUES (${item}) RETURNING id`
        // Written in the same transaction: if anything below fails, neither the order
        // nor the job exists, and no worker ever sees the job before the commit.
        yield* jobs.insert(SendReceipt, { orderId: order!.id })
        return order!.id
      }),
    )
  })
