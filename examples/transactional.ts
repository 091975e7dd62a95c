/**
 * Transactional insert: `npx tsx examples/transactional.ts`
 *
 * `jobs.insert` runs on the app's own `SqlClient`, so inside `sql.withTransaction` the job is
 * written in the same transaction as the app's rows: both commit, or neither exists.
 */
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import { SqlClient } from "@effect/sql"
import { Console, Effect, Layer, Schema } from "effect"
import { Job, Jobs, JobsPglite } from "effect-jobs"

const SendReceipt = Job.make("send-receipt", {
  args: Schema.Struct({ orderId: Schema.Number }),
})

const sendReceipt = SendReceipt.handler(({ args }) =>
  Console.log(`  [job] sending the receipt for order ${args.orderId}`),
)

class OutOfStock extends Schema.TaggedError<OutOfStock>()("OutOfStock", { item: Schema.String }) {}

// The database is shared: the app's SqlClient and the jobs runtime use the same one.
const Database = JobsPglite.layer() // in memory
const JobsLive = Jobs.layer({ handlers: [sendReceipt] }).pipe(Layer.provideMerge(Database))

/** Stores an order and the job that sends its receipt. Run it inside a transaction. */
const placeOrder = (item: string, inStock: boolean) =>
  Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    const jobs = yield* Jobs.Jobs
    const [order] = yield* sql<{ id: number }>`INSERT INTO orders (item) VALUES (${item}) RETURNING id`
    const job = yield* jobs.insert(SendReceipt, { orderId: order!.id })
    yield* Console.log(`  wrote order ${order!.id} (${item}) and job #${job.id}, transaction still open`)
    // A failure before the end of the transaction rolls back both writes.
    if (!inStock) return yield* new OutOfStock({ item })
  })

const program = Effect.gen(function* () {
  const sql = yield* SqlClient.SqlClient
  const jobs = yield* Jobs.Jobs
  yield* sql`CREATE TABLE orders (id serial PRIMARY KEY, item text NOT NULL)`

  yield* Console.log("Order 1, a book, in stock:")
  yield* sql.withTransaction(placeOrder("book", true))
  yield* Console.log("  committed: the job can run now")
  yield* jobs.flush("default") // wait until every available job has run

  yield* Console.log("\nOrder 2, a lamp, out of stock:")
  yield* sql
    .withTransaction(placeOrder("lamp", false))
    .pipe(
      Effect.catchTag("OutOfStock", (error) => Console.log(`  rolled back: ${error.item} is out of stock`)),
    )

  const orders = yield* sql<{ id: number; item: string }>`SELECT id, item FROM orders ORDER BY id`
  const stored = yield* jobs.list()
  yield* Console.log("\nWhat the database holds:")
  yield* Console.log(`  orders: ${orders.map((o) => `${o.id} (${o.item})`).join(", ")}`)
  yield* Console.log(
    `  jobs:   ${stored.map((j) => `#${j.id} ${j.type} ${JSON.stringify(j.args)} ${j.state}`).join(", ")}`,
  )
})

program.pipe(Effect.provide(JobsLive), NodeRuntime.runMain)
