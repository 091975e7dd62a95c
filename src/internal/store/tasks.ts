/**
 * The tasks, task_nodes and task_runs tables: each task's stored state, counters and next run,
 * who runs it now, which nodes have it registered, and the history of its runs.
 *
 * A run is claimed by flipping the task's row to `running` with a fresh token, in one
 * statement that only applies to a waiting task (or to one left running by a node that
 * stopped heartbeating), so each run happens on one node. Its outcome is written guarded by
 * that token, together with its history row: the state moves on exactly once per run that
 * finished.
 */
import type { SqlError } from "@effect/sql/SqlError"
import { Duration, Effect } from "effect"
import type * as Tasks from "../../Tasks.js"
import type { StoreContext } from "./context.js"
import { aliveWithin } from "./nodes.js"
import { toDate, toDateOrNull } from "./records.js"

/** A task as stored when a node registers it. */
export interface NewTask {
  readonly id: string
  readonly name: string
  readonly everyMillis: number | null
  readonly expression: string | null
  readonly timezone: string | null
  readonly hidden: boolean
  /** The encoded initial state, as JSON. */
  readonly initialJson: string
  /** When it is first due, unless it was stored before with the same schedule. */
  readonly firstRunAt: Date
}

/** A run this node claimed: the task's stored state, and the token that guards the outcome. */
export interface ClaimedTask {
  readonly id: string
  readonly state: unknown
  readonly runToken: string
  /** The run an operator requested, if one was pending when it was claimed: this run serves it. */
  readonly requestedAt: Date | null
}

/** How a run ended. */
export type TaskOutcome =
  | { readonly kind: "success"; readonly state: unknown }
  | { readonly kind: "failure"; readonly error: string }
  /** The task died: its state is reset to `initialJson`, its counters to zero. */
  | { readonly kind: "defect"; readonly error: string }
  /** Cut short here (shutdown, unregister): due again as it was. */
  | { readonly kind: "interrupted" }

export interface FinishedTaskRun {
  readonly run: ClaimedTask
  readonly node: string
  readonly trigger: "schedule" | "manual"
  readonly outcome: TaskOutcome
  readonly startedAt: Date
  readonly finishedAt: Date
  /** When the task is next due; null when it does not recur. */
  readonly nextRunAt: Date | null
  /** The encoded initial state, as JSON, for a defect. */
  readonly initialJson: string
  /** Runs kept per task. */
  readonly historyLimit: number
}

export interface TasksStore {
  /**
   * Stores the task, or renames it where it was stored before: a stored task keeps its state,
   * counters and next run, unless its schedule changed, and then it is next due by the new one.
   * Records that `node` has it registered. Answers its stats, with the nodes heard from within
   * `nodeTimeoutMillis` that have it registered.
   */
  readonly registerTask: (
    task: NewTask,
    node: string,
    at: Date,
    nodeTimeoutMillis: number,
  ) => Effect.Effect<Tasks.TaskStats, SqlError>
  /** Records that `node` no longer has the task registered. */
  readonly unregisterTask: (id: string, node: string) => Effect.Effect<unknown, SqlError>
  /**
   * Forgets every registration of `node` (an earlier process of the same name left them, or
   * the node stops), and those of nodes no longer in the nodes table (they died and the
   * rescuer removed them).
   */
  readonly forgetTaskNodes: (node: string) => Effect.Effect<unknown, SqlError>
  /**
   * Claims for `node` the runs due by `now` (unless paused) or requested of the tasks `ids`
   * that are free: waiting, or left running by a node silent for `nodeTimeoutMillis` (or by an
   * earlier process named `node`).
   */
  readonly claimDueTasks: (
    ids: ReadonlyArray<string>,
    node: string,
    nodeTimeoutMillis: number,
    token: string,
    now: Date,
  ) => Effect.Effect<ReadonlyArray<ClaimedTask>, SqlError>
  /**
   * The earliest time after `after` at which one of the waiting tasks `ids` is next due, if
   * any: when the task loop wakes next, for a task due sooner than its polling.
   */
  readonly nextTaskRunAt: (ids: ReadonlyArray<string>, after: Date) => Effect.Effect<Date | null, SqlError>
  /** Claims a run of the task now, due or not, if it is free as `claimDueTasks` says. */
  readonly claimTask: (
    id: string,
    node: string,
    nodeTimeoutMillis: number,
    token: string,
    now: Date,
  ) => Effect.Effect<ClaimedTask | undefined, SqlError>
  /** The node the task's row says runs it, if any. */
  readonly taskRunBy: (id: string) => Effect.Effect<string | null, SqlError>
  /**
   * Writes a run's outcome and its history row, and trims the history to `historyLimit`, if
   * the run still holds the task; undefined when another node took it over meanwhile.
   */
  readonly finishTaskRun: (run: FinishedTaskRun) => Effect.Effect<Tasks.TaskRun | undefined, SqlError>
  /**
   * The stored tasks, by id: those of `ids`, or all of them (whichever nodes registered them),
   * each with the nodes heard from within `nodeTimeoutMillis` that have it registered.
   */
  readonly taskStats: (
    ids: ReadonlyArray<string> | undefined,
    includeHidden: boolean,
    nodeTimeoutMillis: number,
  ) => Effect.Effect<ReadonlyArray<Tasks.TaskStats>, SqlError>
  /** A task's runs, newest first, at most `limit` (1 to 1,000). */
  readonly taskHistory: (id: string, limit: number) => Effect.Effect<ReadonlyArray<Tasks.TaskRun>, SqlError>
  /** Pauses or resumes the task on every node; false when no task has that id. */
  readonly setTaskPaused: (id: string, paused: boolean, at: Date) => Effect.Effect<boolean, SqlError>
  /**
   * Asks for a run of the task as soon as a node that has it registered can start one,
   * paused or not (a request already pending stays as it is); false when no task has that id.
   */
  readonly requestTaskRun: (id: string) => Effect.Effect<boolean, SqlError>
}

const statsFrom = (r: any): Tasks.TaskStats => ({
  id: r.id,
  name: r.name,
  status: r.status,
  paused: Boolean(r.paused),
  runRequestedAt: toDateOrNull(r.run_requested_at),
  runningOn: r.status === "running" ? (r.run_by ?? null) : null,
  nextRunAt: toDateOrNull(r.next_run_at),
  lastRunAt: toDateOrNull(r.last_run_at),
  every: r.every_ms === null ? null : Duration.millis(Number(r.every_ms)),
  cron: r.expression ?? null,
  timezone: r.timezone ?? null,
  recurs: r.expression !== null || Number(r.every_ms) > 0,
  successes: Number(r.successes),
  failures: Number(r.failures),
  lastError: r.last_error ?? null,
  startedAt: toDate(r.started_at),
  restartedAt: toDateOrNull(r.restarted_at),
  hidden: Boolean(r.hidden),
  nodes: r.nodes ?? [],
  state: r.state,
})

const runFrom = (r: any): Tasks.TaskRun => ({
  id: Number(r.id),
  taskId: r.task_id,
  taskName: r.task_name,
  node: r.node,
  trigger: r.trigger,
  outcome: r.outcome,
  error: r.error ?? null,
  state: r.state,
  startedAt: toDate(r.started_at),
  finishedAt: toDate(r.finished_at),
})

const claimedFrom = (r: any): ClaimedTask => ({
  id: r.id,
  state: r.state,
  runToken: r.run_token,
  requestedAt: toDateOrNull(r.run_requested_at),
})

/** The condition that a row's id is one of the JSON array of ids given as $1. */
const idIn = "id IN (SELECT jsonb_array_elements_text($1::jsonb))"

/** The SET clause and parameters that write an outcome, after the four every outcome shares. */
const outcomeUpdate = (
  f: FinishedTaskRun,
): { readonly set: string; readonly params: ReadonlyArray<unknown> } => {
  const next = f.nextRunAt?.toISOString() ?? null
  switch (f.outcome.kind) {
    case "success":
      return {
        set: `state = $5::jsonb, successes = successes + 1, last_run_at = $4::timestamptz,
          next_run_at = $6::timestamptz`,
        params: [JSON.stringify(f.outcome.state), next],
      }
    case "failure":
      return {
        set: `failures = failures + 1, last_error = $5, last_run_at = $4::timestamptz,
          next_run_at = $6::timestamptz`,
        params: [f.outcome.error, next],
      }
    case "defect":
      return {
        set: `state = $7::jsonb, successes = 0, failures = 0, last_error = $5, started_at = $3::timestamptz,
          restarted_at = $3::timestamptz, last_run_at = $4::timestamptz, next_run_at = $6::timestamptz`,
        params: [f.outcome.error, next, f.initialJson],
      }
    case "interrupted":
      // Due again as it was: the run did not happen.
      return { set: `last_run_at = last_run_at`, params: [] }
  }
}

/** Writes a run's outcome and history row, if the run still holds the task. */
const finishTaskRun =
  ({ sql, schema }: StoreContext) =>
  (f: FinishedTaskRun) => {
    const table = `${schema}.tasks`
    const runsTable = `${schema}.task_runs`
    return sql.withTransaction(
      Effect.gen(function* () {
        const at = f.finishedAt.toISOString()
        const { set, params } = outcomeUpdate(f)
        // An interrupted run's start is not stored, and a parameter the statement does not use
        // would leave PostgreSQL unable to type it.
        const shared = [
          f.run.id,
          f.run.runToken,
          at,
          ...(f.outcome.kind === "interrupted" ? [] : [f.startedAt.toISOString()]),
        ]
        // A finished run serves the request it was claimed with (asking again meanwhile changed
        // nothing); a request made while a run that was not requested ran stays for the next.
        const served =
          f.outcome.kind === "interrupted"
            ? { set: "", params: [] }
            : {
                set: `, run_requested_at = CASE WHEN run_requested_at IS NOT DISTINCT FROM
                  $${shared.length + params.length + 1}::timestamptz THEN NULL ELSE run_requested_at END`,
                params: [f.run.requestedAt?.toISOString() ?? null],
              }
        const updated = yield* sql.unsafe<{ name: string; state: unknown }>(
          `UPDATE ${table} SET ${set}${served.set}, status = 'waiting', run_by = NULL, run_token = NULL,
           run_started_at = NULL, updated_at = $3::timestamptz
         WHERE id = $1 AND run_token = $2::uuid
         RETURNING name, state`,
          [...shared, ...params, ...served.params],
        )
        if (updated.length === 0) return undefined
        const [run] = yield* sql.unsafe(
          `INSERT INTO ${runsTable} (task_id, task_name, node, trigger, outcome, error, state, started_at, finished_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb, $8::timestamptz, $9::timestamptz)
         RETURNING *`,
          [
            f.run.id,
            updated[0]!.name,
            f.node,
            f.trigger,
            f.outcome.kind,
            f.outcome.kind === "failure" || f.outcome.kind === "defect" ? f.outcome.error : null,
            JSON.stringify(updated[0]!.state),
            f.startedAt.toISOString(),
            at,
          ],
        )
        yield* sql.unsafe(
          `DELETE FROM ${runsTable} WHERE task_id = $1 AND id <= (
           SELECT id FROM ${runsTable} WHERE task_id = $1 ORDER BY id DESC OFFSET $2 LIMIT 1)`,
          [f.run.id, f.historyLimit],
        )
        return runFrom(run)
      }),
    )
  }

/** The stored tasks with the live nodes that have each registered, and a task's runs. */
const statsReads = ({ sql, schema }: StoreContext): Pick<TasksStore, "taskStats" | "taskHistory"> => {
  // The live nodes that have each task registered; a heartbeat's age is the database's time.
  const statsStatement = `SELECT t.*, COALESCE((
      SELECT jsonb_agg(r.node ORDER BY r.node) FROM ${schema}.task_nodes r JOIN ${schema}.nodes n ON n.id = r.node
      WHERE r.task_id = t.id AND ${aliveWithin("$3", "n")}
    ), '[]'::jsonb) AS nodes
    FROM ${schema}.tasks t
    WHERE ($1::jsonb IS NULL OR t.${idIn}) AND ($2 OR NOT t.hidden)
    ORDER BY t.id`

  return {
    taskStats: (ids, includeHidden, nodeTimeoutMillis) =>
      Effect.map(
        sql.unsafe(statsStatement, [
          ids === undefined ? null : JSON.stringify(ids),
          includeHidden,
          nodeTimeoutMillis,
        ]),
        (rows) => rows.map(statsFrom),
      ),
    taskHistory: (id, limit) =>
      Effect.map(
        sql.unsafe(`SELECT * FROM ${schema}.task_runs WHERE task_id = $1 ORDER BY id DESC LIMIT $2`, [
          id,
          Math.max(1, Math.min(limit, 1000)),
        ]),
        (rows) => rows.map(runFrom),
      ),
  }
}

/** What an operator changes from any process: a task's pause, and a request for a run. */
const controls = ({ sql, schema }: StoreContext): Pick<TasksStore, "setTaskPaused" | "requestTaskRun"> => ({
  setTaskPaused: (id, paused, at) =>
    Effect.map(
      sql.unsafe(
        `UPDATE ${schema}.tasks SET paused = $2, updated_at = $3::timestamptz WHERE id = $1 RETURNING id`,
        [id, paused, at.toISOString()],
      ),
      (rows) => rows.length > 0,
    ),
  // The database's time, to the millisecond a JavaScript Date holds: the finish of the run
  // that served it compares it with the value its claim read.
  requestTaskRun: (id) =>
    Effect.map(
      sql.unsafe(
        `UPDATE ${schema}.tasks SET run_requested_at = COALESCE(run_requested_at, date_trunc('milliseconds', now()))
         WHERE id = $1 RETURNING id`,
        [id],
      ),
      (rows) => rows.length > 0,
    ),
})

/** The tasks' rows as nodes register them, and the task_nodes rows that say which node has which. */
const registrations = (
  { sql, schema }: StoreContext,
  taskStats: TasksStore["taskStats"],
): Pick<TasksStore, "registerTask" | "unregisterTask" | "forgetTaskNodes"> => {
  const upsertTask = (task: NewTask, at: Date) =>
    sql.unsafe(
      `INSERT INTO ${schema}.tasks AS t (id, name, every_ms, expression, timezone, hidden, state, next_run_at,
         started_at, updated_at)
       VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb, $8::timestamptz, $9::timestamptz, $9::timestamptz)
       ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name, hidden = EXCLUDED.hidden, updated_at = EXCLUDED.updated_at,
         every_ms = EXCLUDED.every_ms, expression = EXCLUDED.expression, timezone = EXCLUDED.timezone,
         next_run_at = CASE
           WHEN (t.every_ms, t.expression, t.timezone) IS NOT DISTINCT FROM
                (EXCLUDED.every_ms, EXCLUDED.expression, EXCLUDED.timezone) THEN t.next_run_at
           ELSE EXCLUDED.next_run_at END
       RETURNING id`,
      [
        task.id,
        task.name,
        task.everyMillis,
        task.expression,
        task.timezone,
        task.hidden,
        task.initialJson,
        task.firstRunAt.toISOString(),
        at.toISOString(),
      ],
    )

  return {
    registerTask: (task, node, at, nodeTimeoutMillis) =>
      sql.withTransaction(
        Effect.gen(function* () {
          yield* upsertTask(task, at)
          yield* sql.unsafe(
            `INSERT INTO ${schema}.task_nodes (task_id, node, registered_at) VALUES ($1, $2, $3::timestamptz)
             ON CONFLICT (task_id, node) DO UPDATE SET registered_at = EXCLUDED.registered_at`,
            [task.id, node, at.toISOString()],
          )
          const [stats] = yield* taskStats([task.id], true, nodeTimeoutMillis)
          return stats!
        }),
      ),
    unregisterTask: (id, node) =>
      sql.unsafe(`DELETE FROM ${schema}.task_nodes WHERE task_id = $1 AND node = $2`, [id, node]),
    forgetTaskNodes: (node) =>
      sql.unsafe(
        `DELETE FROM ${schema}.task_nodes WHERE node = $1 OR node NOT IN (SELECT id FROM ${schema}.nodes)`,
        [node],
      ),
  }
}

/** Claiming runs, when the next is due, who runs a task, and writing a run's outcome. */
const runs = (
  ctx: StoreContext,
): Pick<TasksStore, "claimDueTasks" | "claimTask" | "nextTaskRunAt" | "taskRunBy" | "finishTaskRun"> => {
  const { sql, schema } = ctx
  const table = `${schema}.tasks`

  // A run left `running` by a node that stopped heartbeating (or left the table) is free,
  // and so is one marked as this node's: the caller asks only for tasks idle here, so a
  // previous process with the same node name left it. Heartbeats are the database's time,
  // so their age is too.
  const claimable = `(status = 'waiting' OR run_by IS NULL OR run_by = $3 OR run_by NOT IN (
      SELECT id FROM ${schema}.nodes
      WHERE ${aliveWithin("$2")}))`
  // Both claims take the same parameters after the first, $1: the ids of the due claim, or one id.
  const claimStatement = (where: string) =>
    `UPDATE ${table} SET status = 'running', run_by = $3, run_token = $4::uuid, run_started_at = $5::timestamptz
     WHERE ${where} AND ${claimable}
     RETURNING *`
  // A paused task is not due; a requested run is, paused or not.
  const claimDue = claimStatement(
    `${idIn} AND ((next_run_at <= $5::timestamptz AND NOT paused) OR run_requested_at IS NOT NULL)`,
  )
  const claimOne = claimStatement("id = $1")

  return {
    claimDueTasks: (ids, node, nodeTimeoutMillis, token, now) =>
      Effect.map(
        sql.unsafe(claimDue, [JSON.stringify(ids), nodeTimeoutMillis, node, token, now.toISOString()]),
        (rows) => rows.map(claimedFrom),
      ),
    claimTask: (id, node, nodeTimeoutMillis, token, now) =>
      Effect.map(sql.unsafe(claimOne, [id, nodeTimeoutMillis, node, token, now.toISOString()]), (rows) =>
        rows.length === 0 ? undefined : claimedFrom(rows[0]),
      ),
    // Only later times count: a task due now that the claim did not get runs elsewhere.
    nextTaskRunAt: (ids, after) =>
      Effect.map(
        sql.unsafe<{ next_run_at: unknown }>(
          `SELECT min(next_run_at) AS next_run_at FROM ${table}
           WHERE ${idIn} AND status = 'waiting' AND NOT paused AND next_run_at > $2::timestamptz`,
          [JSON.stringify(ids), after.toISOString()],
        ),
        (rows) => toDateOrNull(rows[0]?.next_run_at),
      ),
    taskRunBy: (id) =>
      Effect.map(
        sql.unsafe<{ run_by: string | null }>(`SELECT run_by FROM ${table} WHERE id = $1`, [id]),
        (rows) => rows[0]?.run_by ?? null,
      ),
    finishTaskRun: finishTaskRun(ctx),
  }
}

export const make = (ctx: StoreContext): TasksStore => {
  const reads = statsReads(ctx)
  return { ...reads, ...registrations(ctx, reads.taskStats), ...runs(ctx), ...controls(ctx) }
}
