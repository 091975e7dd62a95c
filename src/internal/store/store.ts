/**
 * The storage boundary: every statement effect-jobs runs, for one schema, behind the `Store`
 * interface. The same SQL runs on PostgreSQL and on PGlite. Each table has its module:
 *
 * - `jobs.ts`: the path every job takes, in `insert.ts`, `claim.ts` and `finish.ts`
 * - `jobAdmin.ts`: jobs as an operator sees them (get, cancel, retry, remove, resources)
 * - `jobQuery.ts`: jobs found by a filter (pages, counts, bulk cancel, retry and delete)
 * - `journal.ts`: a running handler's progress and log lines
 * - `upkeep.ts`: the leader's upkeep of the jobs table (stage, prune, rescue, vacuum)
 * - `nodes.ts`: heartbeats and the leader
 * - `queues.ts`: each queue's cluster-wide state, and signals
 * - `queueAdmin.ts`: queues across the cluster (listing, orphans, retention, deletion)
 * - `schedules.ts`: cron schedules and the enqueuing of their ticks
 * - `tasks.ts`: tasks, their runs and history
 * - `stats.ts`: figures about the jobs table for an operator (counts, throughput, health)
 * - `transactions.ts`: the caller's transaction, and whether it committed
 * - `failures.ts`: failed jobs grouped by their last error
 * - `jobStats.ts`: the leader's per-minute and per-hour aggregates of finished jobs
 *
 * Beside them: `records.ts` (rows as `JobRecord`s), `outcomes.ts` (how an attempt ended, as
 * written back), `context.ts` (what the modules share), `migrations.ts` and `prepared.ts`.
 */
import type { SqlClient } from "@effect/sql/SqlClient"
import { makeContext } from "./context.js"
import * as Failures from "./failures.js"
import * as JobAdmin from "./jobAdmin.js"
import * as JobQuery from "./jobQuery.js"
import * as JobStats from "./jobStats.js"
import * as Jobs from "./jobs.js"
import * as Journal from "./journal.js"
import * as Nodes from "./nodes.js"
import type { PreparedStatements } from "./prepared.js"
import * as QueueAdmin from "./queueAdmin.js"
import * as Queues from "./queues.js"
import * as Schedules from "./schedules.js"
import * as Stats from "./stats.js"
import * as Tasks from "./tasks.js"
import * as Transactions from "./transactions.js"
import * as Upkeep from "./upkeep.js"

export type { StateSummary, Transition } from "./jobAdmin.js"
export type { BatchResult, JobCount, ListOrder, PageQuery } from "./jobQuery.js"
export { pageStatement } from "./jobQuery.js"
export type { Histogram, StatsPeriod, StatsRow } from "./jobStats.js"
export { bucketsPerDoubling } from "./jobStats.js"
export type { NewJobs, QueueLimits, UniqueInsert } from "./jobs.js"
export type { JournalEntry } from "./journal.js"
export type { NodeRegistration, NodeRow } from "./nodes.js"
export type { ErrorEntry, Outcome, SerializedOutcome } from "./outcomes.js"
export { Completed, PlainCompletion } from "./outcomes.js"
export type { StoredQueue } from "./queueAdmin.js"
export type { QueueState } from "./queues.js"
export { recordFromRow, toDate, toDateOrNull } from "./records.js"
export type { NewSchedule, ScheduleRow } from "./schedules.js"
export type { FinishedCount, OverdueQueue, StateCount, TableHealth } from "./stats.js"
export type { ClaimedTask, FinishedTaskRun, NewTask, TaskOutcome } from "./tasks.js"
export type { TransactionStatus } from "./transactions.js"
export type { Rescued } from "./upkeep.js"

/** Everything effect-jobs stores and reads, for one schema. */
export interface Store
  extends Jobs.JobsStore,
    JobAdmin.JobAdminStore,
    JobQuery.JobQueryStore,
    Journal.JournalStore,
    Upkeep.UpkeepStore,
    Nodes.NodesStore,
    Queues.QueuesStore,
    QueueAdmin.QueueAdminStore,
    Schedules.SchedulesStore,
    Tasks.TasksStore,
    Transactions.TransactionsStore,
    Stats.StatsStore,
    JobStats.JobStatsStore,
    Failures.FailuresStore {
  /** The schema the tables are in. */
  readonly schema: string
  /** The channel of the schema's signals. */
  readonly channel: string
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
): Store => {
  const context = makeContext(sql, schema, prepared, keepCompleted)
  const jobs = Jobs.make(context)
  return {
    schema,
    channel: context.channel,
    ...jobs,
    ...JobAdmin.make(context),
    ...JobQuery.make(context),
    ...Journal.make(context),
    ...Upkeep.make(context),
    ...Nodes.make(context),
    ...Queues.make(context),
    ...QueueAdmin.make(context),
    ...Schedules.make(context, jobs.insert),
    ...Tasks.make(context),
    ...Transactions.make(context),
    ...Stats.make(context),
    ...JobStats.make(context),
    ...Failures.make(context),
  }
}
