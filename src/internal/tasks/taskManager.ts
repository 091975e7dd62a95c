/**
 * The task manager of one node: the tasks it registered, a loop that claims their due runs,
 * and the runs themselves.
 *
 * A run is claimed by flipping the task's row to `running` with a fresh token, in one
 * statement that only applies to a waiting task (or to one left running by a node that
 * stopped heartbeating), so each run happens on one node. Its outcome is written guarded by
 * that token, together with its history row: the state moves on exactly once per run that
 * finished. A run cut short by a crash is run again from the state before it.
 */
import { randomUUID } from "node:crypto"
import type { SqlClient } from "@effect/sql/SqlClient"
import {
  Cause,
  Clock,
  type Context,
  Cron,
  Duration,
  Effect,
  Either,
  Exit,
  Fiber,
  FiberMap,
  Option,
  ParseResult,
  Queue,
  Schema,
  type Scope,
} from "effect"
import {
  type DatabaseError,
  InvalidTask,
  TaskAlreadyRegistered,
  TaskAlreadyRunning,
  TaskNotRegistered,
} from "../../JobError.js"
import type * as Task from "../../Task.js"
import type * as Tasks from "../../Tasks.js"
import { retryDatabase, toDatabaseError } from "../store/retryDatabase.js"
import { toDate, toDateOrNull } from "../store/store.js"

interface Entry {
  readonly task: Task.Task
  readonly context: Context.Context<unknown>
  readonly cron: Cron.Cron | undefined
  readonly everyMillis: number | undefined
}

export interface TaskEnvironment {
  readonly sql: SqlClient
  readonly schema: string
  readonly node: string
  /** A node silent for this long is taken for dead; its runs may be claimed again. */
  readonly nodeTimeoutMillis: number
  /** How often the loop looks for due runs when nothing woke it. */
  readonly pollInterval: Duration.Duration
  /** Runs kept per task. */
  readonly historyLimit: number
}

const idPattern = /^[^\p{Cc}]{1,200}$/u
const maxErrorLength = 4000

const statsFrom = (r: any): Tasks.TaskStats => ({
  id: r.id,
  name: r.name,
  status: r.status,
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

/** What a failure says, briefly: the tag and message of a tagged error, or its text. */
const describeError = (error: unknown): string => {
  if (typeof error === "object" && error !== null) {
    const { _tag, message } = error as { _tag?: unknown; message?: unknown }
    if (typeof message === "string" && message !== "") {
      return typeof _tag === "string" ? `${_tag}: ${message}` : message
    }
    if (typeof _tag === "string") return _tag
  }
  try {
    return JSON.stringify(error) ?? String(error)
  } catch {
    return String(error)
  }
}

const clip = (text: string) => (text.length > maxErrorLength ? `${text.slice(0, maxErrorLength)}…` : text)

type Outcome =
  | { readonly kind: "success"; readonly state: unknown }
  | { readonly kind: "failure"; readonly error: string }
  | { readonly kind: "defect"; readonly error: string }
  | { readonly kind: "interrupted" }

/** The stored tasks, by id: those of `ids`, or all of them (whichever nodes registered them). */
export const storedStats = (
  sql: SqlClient,
  schema: string,
  ids: ReadonlyArray<string> | undefined,
  includeHidden: boolean,
): Effect.Effect<ReadonlyArray<Tasks.TaskStats>, DatabaseError> =>
  sql
    .unsafe(
      `SELECT * FROM ${schema}.tasks
       WHERE ($1::jsonb IS NULL OR id IN (SELECT jsonb_array_elements_text($1::jsonb))) AND ($2 OR NOT hidden)
       ORDER BY id`,
      [ids === undefined ? null : JSON.stringify(ids), includeHidden],
    )
    .pipe(
      Effect.map((rows) => rows.map(statsFrom)),
      Effect.mapError(toDatabaseError("reading task stats")),
    )

/** A task's runs, newest first. */
export const storedHistory = (
  sql: SqlClient,
  schema: string,
  id: string,
  limit: number,
): Effect.Effect<ReadonlyArray<Tasks.TaskRun>, DatabaseError> =>
  sql
    .unsafe(`SELECT * FROM ${schema}.task_runs WHERE task_id = $1 ORDER BY id DESC LIMIT $2`, [
      id,
      Math.max(1, Math.min(limit, 1000)),
    ])
    .pipe(
      Effect.map((rows) => rows.map(runFrom)),
      Effect.mapError(toDatabaseError(`reading the history of task "${id}"`)),
    )

export const make = (env: TaskEnvironment) =>
  Effect.gen(function* () {
    const { sql, schema, node } = env
    const table = `${schema}.tasks`
    const runsTable = `${schema}.task_runs`
    const registered = new Map<string, Entry>()
    const running = yield* FiberMap.make<string>()
    const wake = yield* Queue.sliding<void>(1)

    /** Checks a task and computes what is stored for it; nothing is written. */
    const prepare = (task: Task.Task) =>
      Effect.gen(function* () {
        const refuse = (reason: string) => new InvalidTask({ task: String(task.id), reason })
        if (typeof task.id !== "string" || !idPattern.test(task.id) || task.id.trim() === "") {
          return yield* refuse(
            "its id must be 1 to 200 characters, not all spaces, without control characters",
          )
        }
        if (typeof task.name !== "string" || !idPattern.test(task.name)) {
          return yield* refuse("its name must be 1 to 200 characters without control characters")
        }
        if ((task.every === undefined) === (task.cron === undefined)) {
          return yield* refuse("give either every (an interval) or cron (an expression)")
        }
        let cron: Cron.Cron | undefined
        let everyMillis: number | undefined
        if (task.cron !== undefined) {
          const parsed = Cron.parse(task.cron, task.timezone)
          if (Either.isLeft(parsed)) {
            return yield* refuse(
              `cron ${JSON.stringify(task.cron)}${task.timezone === undefined ? "" : ` in time zone ${JSON.stringify(task.timezone)}`}: ${parsed.left.message}`,
            )
          }
          cron = parsed.right
        } else {
          if (task.timezone !== undefined) return yield* refuse("a time zone applies only to a cron task")
          const decoded = Duration.decodeUnknown(task.every)
          if (Option.isNone(decoded) || !Duration.isFinite(decoded.value)) {
            return yield* refuse(
              `every must be a finite duration (zero to run once), got ${String(task.every)}`,
            )
          }
          everyMillis = Duration.toMillis(decoded.value)
        }
        const initial = Schema.encodeEither(task.stateSchema)(task.initial)
        if (Either.isLeft(initial)) {
          return yield* refuse(
            `its initial state does not fit its Schema: ${ParseResult.TreeFormatter.formatErrorSync(initial.left)}`,
          )
        }
        return { cron, everyMillis, initialJson: JSON.stringify(initial.right) }
      })

    const nextRun = (entry: Entry, after: number): Date | null =>
      entry.cron !== undefined
        ? Cron.next(entry.cron, new Date(after))
        : entry.everyMillis! > 0
          ? new Date(after + entry.everyMillis!)
          : null

    // A run left `running` by a node that stopped heartbeating (or left the table) is free,
    // and so is one marked as this node's that this node is not running: a previous process
    // with the same node name left it. Claims here only ask for tasks idle here, and take
    // turns (`claiming`), so this node never claims a run it has under way. Heartbeats are
    // the database's time, so their age is too.
    const claimable = `(status = 'waiting' OR run_by IS NULL OR run_by = $3 OR run_by NOT IN (
        SELECT id FROM ${schema}.nodes
        WHERE heartbeat_at >= now() - $2::double precision * interval '1 millisecond'))`
    const claiming = yield* Effect.makeSemaphore(1)

    const claimDue = (ids: ReadonlyArray<string>, now: number, token: string) =>
      sql.unsafe(
        `UPDATE ${table} SET status = 'running', run_by = $3, run_token = $4::uuid, run_started_at = $5::timestamptz
         WHERE id IN (SELECT jsonb_array_elements_text($1::jsonb)) AND next_run_at <= $5::timestamptz
           AND ${claimable}
         RETURNING *`,
        [JSON.stringify(ids), env.nodeTimeoutMillis, node, token, new Date(now).toISOString()],
      )

    const claimNow = (id: string, now: number, token: string) =>
      sql.unsafe(
        `UPDATE ${table} SET status = 'running', run_by = $3, run_token = $4::uuid, run_started_at = $5::timestamptz
         WHERE id = $1 AND ${claimable}
         RETURNING *`,
        [id, env.nodeTimeoutMillis, node, token, new Date(now).toISOString()],
      )

    /** Writes a run's outcome and its history row, if the run still holds the task. */
    const record = (
      entry: Entry,
      row: any,
      trigger: "schedule" | "manual",
      outcome: Outcome,
      startedAt: number,
      finishedAt: number,
    ) =>
      sql.withTransaction(
        Effect.gen(function* () {
          const at = new Date(finishedAt).toISOString()
          const next = nextRun(entry, finishedAt)?.toISOString() ?? null
          const initialJson = JSON.stringify(Schema.encodeSync(entry.task.stateSchema)(entry.task.initial))
          const params: Array<unknown> = [entry.task.id, row.run_token, at, new Date(startedAt).toISOString()]
          let set: string
          switch (outcome.kind) {
            case "success":
              params.push(JSON.stringify(outcome.state), next)
              set = `state = $5::jsonb, successes = successes + 1, last_run_at = $4::timestamptz,
                next_run_at = $6::timestamptz`
              break
            case "failure":
              params.push(outcome.error, next)
              set = `failures = failures + 1, last_error = $5, last_run_at = $4::timestamptz,
                next_run_at = $6::timestamptz`
              break
            case "defect":
              params.push(outcome.error, next, initialJson)
              set = `state = $7::jsonb, successes = 0, failures = 0, last_error = $5, started_at = $3::timestamptz,
                restarted_at = $3::timestamptz, last_run_at = $4::timestamptz, next_run_at = $6::timestamptz`
              break
            case "interrupted":
              // Due again as it was: the run did not happen. Its start is not stored, and a
              // parameter the statement does not use would leave PostgreSQL unable to type it.
              params.pop()
              set = `last_run_at = last_run_at`
              break
          }
          const updated = yield* sql.unsafe<{ name: string; state: unknown }>(
            `UPDATE ${table} SET ${set}, status = 'waiting', run_by = NULL, run_token = NULL, run_started_at = NULL,
               updated_at = $3::timestamptz
             WHERE id = $1 AND run_token = $2::uuid
             RETURNING name, state`,
            params,
          )
          if (updated.length === 0) return undefined
          const [run] = yield* sql.unsafe(
            `INSERT INTO ${runsTable} (task_id, task_name, node, trigger, outcome, error, state, started_at, finished_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb, $8::timestamptz, $9::timestamptz)
             RETURNING *`,
            [
              entry.task.id,
              updated[0]!.name,
              node,
              trigger,
              outcome.kind,
              outcome.kind === "failure" || outcome.kind === "defect" ? outcome.error : null,
              JSON.stringify(updated[0]!.state),
              new Date(startedAt).toISOString(),
              at,
            ],
          )
          yield* sql.unsafe(
            `DELETE FROM ${runsTable} WHERE task_id = $1 AND id <= (
               SELECT id FROM ${runsTable} WHERE task_id = $1 ORDER BY id DESC OFFSET $2 LIMIT 1)`,
            [entry.task.id, env.historyLimit],
          )
          return runFrom(run)
        }),
      )

    /**
     * One claimed run: decode the stored state, run, and record what happened. The run itself
     * is interruptible (shutdown, unregister); recording is not.
     */
    const execute = (entry: Entry, row: any, trigger: "schedule" | "manual") =>
      Effect.uninterruptibleMask((restore) =>
        Effect.gen(function* () {
          const startedAt = yield* Clock.currentTimeMillis
          const decoded = Schema.decodeUnknownEither(entry.task.stateSchema)(row.state)
          const exit = Either.isLeft(decoded)
            ? Exit.die(
                new Error(
                  `the stored state no longer decodes: ${ParseResult.TreeFormatter.formatErrorSync(decoded.left)}`,
                ),
              )
            : yield* Effect.exit(
                restore(
                  Effect.provide(
                    Effect.suspend(() => entry.task.run(decoded.right)),
                    entry.context,
                  ),
                ),
              )
          const finishedAt = yield* Clock.currentTimeMillis
          let outcome: Outcome
          if (Exit.isSuccess(exit)) {
            const encoded = Schema.encodeEither(entry.task.stateSchema)(exit.value)
            outcome = Either.isRight(encoded)
              ? { kind: "success", state: encoded.right }
              : {
                  kind: "defect",
                  error: `the returned state does not fit the Schema: ${ParseResult.TreeFormatter.formatErrorSync(encoded.left)}`,
                }
          } else if (Cause.isInterruptedOnly(exit.cause)) {
            outcome = { kind: "interrupted" }
          } else {
            const failure = Cause.failureOption(exit.cause)
            outcome = Option.isSome(failure)
              ? { kind: "failure", error: clip(describeError(failure.value)) }
              : { kind: "defect", error: clip(Cause.pretty(exit.cause)) }
          }
          if (outcome.kind === "failure") {
            yield* Effect.logWarning(`task "${entry.task.id}" failed: ${outcome.error}`)
          }
          if (outcome.kind === "defect") {
            yield* Effect.logError(
              `task "${entry.task.id}" died and is reset to its initial state: ${outcome.error}`,
            )
          }
          const run = yield* record(entry, row, trigger, outcome, startedAt, finishedAt).pipe(
            retryDatabase(`recording a run of task "${entry.task.id}"`),
          )
          if (run === undefined) {
            yield* Effect.logWarning(
              `task "${entry.task.id}" was taken over by another node while it ran here; this run's outcome is dropped`,
            )
          }
          return run
        }),
      ).pipe(Effect.annotateLogs({ task: entry.task.id }))

    /** Claims every due run of the tasks registered here and starts them. */
    const round = Effect.gen(function* () {
      if (registered.size === 0) return
      const now = yield* Clock.currentTimeMillis
      const idle = Array.from(registered.keys()).filter((id) => !FiberMap.unsafeHas(running, id))
      if (idle.length === 0) return
      const rows: ReadonlyArray<any> = yield* claimDue(idle, now, randomUUID()).pipe(
        retryDatabase("claiming due tasks"),
      )
      for (const row of rows) {
        const entry = registered.get(row.id)
        // Unregistered meanwhile: hand the run back at once.
        if (entry === undefined) continue
        yield* FiberMap.run(running, row.id, execute(entry, row, "schedule"))
      }
    }).pipe(claiming.withPermits(1))

    const run = Effect.forever(
      Effect.zipRight(round, Effect.raceFirst(Effect.sleep(env.pollInterval), Queue.take(wake))),
    )

    const register = <S, E, R>(task: Task.Task<S, E, R>) =>
      Effect.gen(function* () {
        const checked = yield* prepare(task)
        if (registered.has(task.id)) return yield* new TaskAlreadyRegistered({ task: task.id })
        const context = yield* Effect.context<R>()
        const now = yield* Clock.currentTimeMillis
        const entry: Entry = {
          task: task as Task.Task,
          context: context as Context.Context<unknown>,
          cron: checked.cron,
          everyMillis: checked.everyMillis,
        }
        const first =
          checked.cron !== undefined
            ? Cron.next(checked.cron, new Date(now))
            : new Date(now + (checked.everyMillis ?? 0))
        const at = new Date(now).toISOString()
        // A task stored before keeps its state, counters and next run, unless its schedule
        // changed: then it is next due by the new one.
        const rows = yield* sql
          .unsafe(
            `INSERT INTO ${table} AS t (id, name, every_ms, expression, timezone, hidden, state, next_run_at, started_at,
               updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb, $8::timestamptz, $9::timestamptz, $9::timestamptz)
             ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name, hidden = EXCLUDED.hidden, updated_at = EXCLUDED.updated_at,
               every_ms = EXCLUDED.every_ms, expression = EXCLUDED.expression, timezone = EXCLUDED.timezone,
               next_run_at = CASE
                 WHEN (t.every_ms, t.expression, t.timezone) IS NOT DISTINCT FROM
                      (EXCLUDED.every_ms, EXCLUDED.expression, EXCLUDED.timezone) THEN t.next_run_at
                 ELSE EXCLUDED.next_run_at END
             RETURNING *`,
            [
              task.id,
              task.name,
              checked.everyMillis ?? null,
              task.cron ?? null,
              task.cron === undefined ? null : (task.timezone ?? null),
              task.hidden,
              checked.initialJson,
              first.toISOString(),
              at,
            ],
          )
          .pipe(Effect.mapError(toDatabaseError(`registering task "${task.id}"`)))
        // Checked again: another fiber may have registered the id while the row was written.
        if (registered.has(task.id)) return yield* new TaskAlreadyRegistered({ task: task.id })
        registered.set(task.id, entry)
        yield* Queue.offer(wake, undefined)
        return statsFrom(rows[0])
      })

    const unregister = (id: string) =>
      Effect.gen(function* () {
        if (!registered.delete(id)) return yield* new TaskNotRegistered({ task: id })
        yield* FiberMap.remove(running, id)
      })

    const runNow = (id: string) =>
      Effect.gen(function* () {
        const entry = registered.get(id)
        if (entry === undefined) return yield* new TaskNotRegistered({ task: id })
        const fiber = yield* Effect.gen(function* () {
          if (FiberMap.unsafeHas(running, id)) return yield* new TaskAlreadyRunning({ task: id, node })
          const now = yield* Clock.currentTimeMillis
          const rows = yield* claimNow(id, now, randomUUID()).pipe(
            Effect.mapError(toDatabaseError(`claiming task "${id}"`)),
          )
          if (rows.length === 0) {
            const current = yield* sql
              .unsafe<{ run_by: string | null }>(`SELECT run_by FROM ${table} WHERE id = $1`, [id])
              .pipe(Effect.mapError(toDatabaseError(`reading task "${id}"`)))
            return yield* new TaskAlreadyRunning({ task: id, node: current[0]?.run_by ?? "unknown" })
          }
          return yield* FiberMap.run(running, id, execute(entry, rows[0], "manual"))
        }).pipe(claiming.withPermits(1))
        const run = yield* Fiber.join(fiber)
        if (run === undefined) return yield* new TaskAlreadyRunning({ task: id, node: "another node" })
        return run
      })

    const stats = (options: { readonly includeHidden?: boolean | undefined } = {}) => {
      const ids = Array.from(registered.keys())
      return ids.length === 0
        ? Effect.succeed([])
        : storedStats(sql, schema, ids, options.includeHidden ?? false)
    }

    const history = (id: string, options: { readonly limit?: number | undefined } = {}) =>
      storedHistory(sql, schema, id, options.limit ?? 50)

    const service: Tasks.Tasks["Type"] = { register, unregister, runNow, stats, history }
    return { service, run, round, prepare } as const
  }) satisfies Effect.Effect<unknown, never, Scope.Scope>
