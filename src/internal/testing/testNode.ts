/**
 * The node of the testing layer: the store, the admin API and the events as a worker has
 * them, but no queue, poller or maintenance fiber. Jobs run only when the test says so
 * (`drain`), or at once on insert in `inline` mode, one at a time, in the test's fiber.
 *
 * Time is the `Clock`'s, the TestClock's under `it.effect`: the "database time" that inserts
 * with `scheduleIn` and unique periods read is the Clock here, so `TestClock.adjust` is what
 * makes a scheduled job or a backoff due.
 */
import { randomUUID } from "node:crypto"
import { SqlClient } from "@effect/sql/SqlClient"
import { Cause, Clock, Context, Duration, Effect, Exit } from "effect"
import * as Backoff from "../../Backoff.js"
import type * as Job from "../../Job.js"
import { type DatabaseError, InvalidJobOptions, QueueNotFound, UnstorableOutcome } from "../../JobError.js"
import type { JobRecord, JobState } from "../../JobRecord.js"
import * as Jobs from "../../Jobs.js"
import * as JobsClient from "../../JobsClient.js"
import type * as Schedules from "../../Schedules.js"
import type * as Task from "../../Task.js"
import * as Api from "../api/api.js"
import * as CronEnqueuer from "../maintenance/cronEnqueuer.js"
import * as Observer from "../observer.js"
import { decideOutcome } from "../queue/outcome.js"
import { migrate } from "../store/migrations.js"
import { toDatabaseError } from "../store/retryDatabase.js"
import * as Store from "../store/store.js"
import * as TaskManager from "../tasks/taskManager.js"
import * as Attempt from "./attempt.js"
import type { Outcome } from "./outcome.js"
import { testNode } from "./perform.js"

/** `manual`: inserts are stored and nothing runs until `drain`. `inline`: an insert runs its job at once. */
export type Mode = "manual" | "inline"

export interface DrainOptions {
  /** Also run scheduled jobs not yet due: all of them (`true`) or those due by this time. Defaults to false. */
  readonly withScheduled?: boolean | Date | undefined
  /** Run a failed job again at once, until it succeeds or runs out of attempts. Defaults to false. */
  readonly withRetries?: boolean | undefined
  /** Keep draining the jobs that the drained jobs insert, until none is left. Defaults to false. */
  readonly withRecursion?: boolean | undefined
  /** Run at most this many attempts. Defaults to no limit. */
  readonly limit?: number | undefined
}

/** How many attempts of a drain ended each way, and the outcomes in the order they came. */
export interface DrainResult {
  readonly success: number
  readonly failure: number
  readonly snooze: number
  readonly cancel: number
  readonly discard: number
  readonly timeout: number
  readonly defect: number
  /** Of the attempts above, those whose job ran out of attempts and moved to its queue's dead-letter queue. */
  readonly deadLettered: number
  readonly outcomes: ReadonlyArray<Outcome>
}

export interface TestNodeOptions {
  readonly handlers: ReadonlyArray<Job.Handler<any>>
  readonly mode: Mode
  readonly schema: string
  readonly maxPayloadBytes: number
  /** Each queue's dead-letter queue. */
  readonly deadLetters: ReadonlyMap<string, string>
}

/** One attempt run by the testing node: how it ended, and whether its job moved to a dead-letter queue. */
interface Ran {
  readonly outcome: Outcome
  readonly deadLettered: boolean
}

const waiting: ReadonlyArray<JobState> = ["available", "scheduled", "retryable"]

/** Every job that matches, oldest first: a page at a time, by keyset. */
const listAll = (
  store: Store.Store,
  filter: {
    readonly queue?: string
    readonly type?: string
    readonly state?: ReadonlyArray<JobState>
  },
) =>
  Effect.gen(function* () {
    const all: Array<JobRecord> = []
    while (true) {
      const after = all.length === 0 ? undefined : all[all.length - 1]!.id
      const page = yield* store.listJobs({ filter, limit: 1000, order: "oldest", after })
      all.push(...page)
      if (page.length < 1000) return all
    }
  }).pipe(Effect.mapError(toDatabaseError("listing jobs")))

/**
 * Runs the due jobs of a queue one at a time, in the order a claim takes them, and counts how
 * each attempt ended. With recursion, it looks again after each pass for jobs that came in.
 */
const makeDrain =
  (
    store: Store.Store,
    runOnce: (id: number) => Effect.Effect<Ran | undefined, DatabaseError>,
    enqueueTicks: Effect.Effect<void, DatabaseError>,
  ) =>
  (queue: string, drainOptions: DrainOptions = {}) =>
    Effect.gen(function* () {
      const limit = drainOptions.limit ?? Number.POSITIVE_INFINITY
      const outcomes: Array<Outcome> = []
      let deadLettered = 0
      // A job that snoozes runs once per drain: it would otherwise run again and again.
      const snoozed = new Set<number>()
      const withScheduled = drainOptions.withScheduled ?? false
      while (outcomes.length < limit) {
        // Cron ticks passed on the Clock become jobs first, as the leader's round would make them.
        yield* enqueueTicks
        const now = yield* Clock.currentTimeMillis
        const due = (job: JobRecord) =>
          !snoozed.has(job.id) &&
          (job.state === "available" ||
            job.scheduledAt.getTime() <= now ||
            (job.state === "scheduled" &&
              (withScheduled === true ||
                (withScheduled instanceof Date && job.scheduledAt.getTime() <= withScheduled.getTime()))) ||
            (job.state === "retryable" && drainOptions.withRetries === true))
        const jobs = (yield* listAll(store, { queue, state: waiting }))
          .filter(due)
          .sort(
            (a, b) =>
              a.priority - b.priority || a.scheduledAt.getTime() - b.scheduledAt.getTime() || a.id - b.id,
          )
        if (jobs.length === 0) break
        for (const job of jobs) {
          let ran = outcomes.length < limit ? yield* runOnce(job.id) : undefined
          while (ran !== undefined) {
            outcomes.push(ran.outcome)
            if (ran.deadLettered) deadLettered++
            if (ran.outcome._tag === "Snooze") snoozed.add(job.id)
            const retry =
              drainOptions.withRetries === true &&
              ran.outcome.state === "retryable" &&
              outcomes.length < limit
            ran = retry ? yield* runOnce(job.id) : undefined
          }
        }
        if (drainOptions.withRecursion !== true) break
      }
      const count = (tag: Outcome["_tag"]) => outcomes.filter((outcome) => outcome._tag === tag).length
      return {
        success: count("Success"),
        failure: count("Failure"),
        snooze: count("Snooze"),
        cancel: count("Cancel"),
        discard: count("Discard"),
        timeout: count("Timeout"),
        defect: count("Defect"),
        deadLettered,
        outcomes,
      } satisfies DrainResult
    })

/** Writes what an attempt decided; a result that cannot be stored fails the attempt, as in the runtime. */
const makeFinish =
  (store: Store.Store, observer: Observer.Observer, handlers: ReadonlyMap<string, Job.Handler<any>>) =>
  (
    job: JobRecord,
    lease: string,
    attempt: Attempt.Attempt,
    startedAt: number,
    deadLetter: string | undefined,
  ): Effect.Effect<Ran, DatabaseError> =>
    Effect.gen(function* () {
      const now = yield* Clock.currentTimeMillis
      let stored = attempt.stored
      try {
        store.serialize(stored, new Date(now))
      } catch (error) {
        const reason = error instanceof Error ? error.message : String(error)
        const exit = Exit.failCause(Cause.fail(new UnstorableOutcome({ reason })))
        const backoff = handlers.get(job.type)?.definition.backoff
        stored = yield* decideOutcome(job, lease, exit, now, backoff ?? Backoff.defaultBackoff, deadLetter)
      }
      yield* store
        .finish([stored], new Date(now))
        .pipe(Effect.mapError(toDatabaseError("writing an outcome")))
      observer.finished(
        new Observer.FinishedAttempt(job.id, job.queue, job.type, job.attempt, startedAt, now),
        stored,
      )
      return { outcome: attempt.outcome, deadLettered: stored.kind === "deadLettered" }
    })

/** A queue operation the testing layer cannot do: it runs jobs only when the test says. */
const noQueues = (operation: string) =>
  new InvalidJobOptions({
    message: `${operation}: the testing layer runs no queues; jobs run when the test calls drain, or at once in inline mode`,
  })

/** The testing node's `Jobs`: the client's operations, its events, and no queue of its own. */
const nodeJobs = (
  client: JobsClient.JobsClient["Type"],
  observer: Observer.Observer,
  drain: ReturnType<typeof makeDrain>,
): Jobs.Jobs["Type"] => ({
  ...client,
  node: testNode,
  events: observer.events,
  subscribe: observer.subscribe,
  startQueue: (name) => Effect.fail(noQueues(`startQueue("${name}")`)),
  ensureQueue: (name) => Effect.fail(noQueues(`ensureQueue("${name}")`)),
  stopQueue: (name) => Effect.fail(new QueueNotFound({ queue: name })),
  queues: Effect.succeed([]),
  // Nothing runs in the background here: no job of any queue is running once a call returns.
  drain: () => Effect.void,
  flush: (name) => Effect.asVoid(drain(name, { withRecursion: true })),
  awaitFailure: Effect.never,
})

/**
 * The client's operations, with inserts that go through `runInline`: in inline mode the
 * inserted jobs that are due run before they return, and each is answered as it ended.
 */
const inlineClient = (
  api: ReturnType<typeof Api.make>,
  runInline: (record: JobRecord) => Effect.Effect<JobRecord, DatabaseError>,
): JobsClient.JobsClient["Type"] => {
  const runInserted = (records: ReadonlyArray<Jobs.InsertedJob>) =>
    Effect.forEach(records, (record) =>
      record.conflict
        ? Effect.succeed(record)
        : Effect.map(runInline(record), (current) => Api.withConflict(current, false)),
    )
  return {
    ...api,
    insert: (definition, args, ...insertOptions) =>
      Effect.flatMap(api.insert(definition, args, ...insertOptions), (record) =>
        Effect.map(runInserted([record]), (records) => records[0]!),
      ),
    insertMany: (definition, args, ...insertOptions) =>
      Effect.flatMap(api.insertMany(definition, args, ...insertOptions), runInserted),
  }
}

/**
 * The testing node's cron schedules. A look enqueues the ticks that have passed on the Clock;
 * their jobs, and a schedule's `runNow`, go through `runInline`, so in inline mode they run at
 * once, as inserted jobs do.
 */
const makeCron = (
  store: Store.Store,
  maxPayloadBytes: number,
  inserted: (records: ReadonlyArray<JobRecord>) => void,
  runInline: (record: JobRecord) => Effect.Effect<JobRecord, DatabaseError>,
) => {
  // Set only while a look enqueues ticks: runNow answers its own job.
  let ticked: Array<JobRecord> | undefined
  const enqueuer = CronEnqueuer.make({
    store,
    maxPayloadBytes,
    onInserted: (records) => {
      inserted(records)
      ticked?.push(...records)
    },
  })
  const enqueueTicks = Effect.gen(function* () {
    const jobs: Array<JobRecord> = []
    ticked = jobs
    yield* Effect.ensuring(
      enqueuer.enqueueDue,
      Effect.sync(() => {
        ticked = undefined
      }),
    )
    for (const job of jobs) yield* runInline(job)
  })
  const api = Api.schedules(enqueuer)
  const schedules: Schedules.Schedules["Type"] = {
    ...api,
    runNow: (name) => Effect.flatMap(api.runNow(name), runInline),
  }
  return { enqueuer, enqueueTicks, schedules }
}

export const make = (options: TestNodeOptions) =>
  Effect.gen(function* () {
    const sql = yield* SqlClient
    // The handlers' services, with this layer's own Jobs and JobsClient added below: a job
    // that inserts jobs gets the testing node, not a runtime.
    let context = yield* Effect.context<never>()
    const plain = Store.make(sql.withoutTransforms(), options.schema)
    // One node, one clock: what the runtime reads from the database's clock comes from the Clock.
    const store: Store.Store = {
      ...plain,
      now: Effect.map(Clock.currentTimeMillis, (millis) => new Date(millis)),
    }
    yield* migrate(sql, options.schema).pipe(
      Effect.catchTag("SqlError", (error) => toDatabaseError("migrating the jobs schema")(error)),
    )
    const observer = yield* Observer.make(4096)
    const handlers = new Map(options.handlers.map((handler) => [handler.definition.type, handler] as const))
    let mode = options.mode

    const finish = makeFinish(store, observer, handlers)

    /** Claims one job by id and runs one attempt of it; undefined when it no longer waits. */
    const runOnce = (id: number): Effect.Effect<Ran | undefined, DatabaseError> =>
      Effect.gen(function* () {
        const lease = randomUUID()
        const startedAt = yield* Clock.currentTimeMillis
        const [job] = yield* store
          .claimIds([id], testNode, lease, new Date(startedAt))
          .pipe(Effect.mapError(toDatabaseError("claiming a job")))
        if (job === undefined) return undefined
        observer.started(job, startedAt)
        const deadLetter = options.deadLetters.get(job.queue)
        const attempt = yield* Effect.provide(
          Attempt.run(handlers, testNode, job, lease, deadLetter),
          context,
        )
        return yield* finish(job, lease, attempt, startedAt, deadLetter)
      })

    const api = Api.make({
      store,
      maxPayloadBytes: options.maxPayloadBytes,
      nodeTimeoutMillis: 30_000,
      local: { ...Api.remote, inserted: observer.inserted, cancelled: observer.cancelled },
    })

    /** In inline mode a job that is due runs once, at once; answers the job as it is then. */
    const runInline = (record: JobRecord) =>
      Effect.gen(function* () {
        if (mode !== "inline" || record.state !== "available") return record
        if (record.scheduledAt.getTime() > (yield* Clock.currentTimeMillis)) return record
        yield* runOnce(record.id)
        return yield* api.get(record.id).pipe(Effect.catchTag("JobNotFound", () => Effect.succeed(record)))
      })

    const cron = makeCron(store, options.maxPayloadBytes, observer.inserted, runInline)
    const drain = makeDrain(store, runOnce, cron.enqueueTicks)

    const client = inlineClient(api, runInline)

    const jobs = nodeJobs(client, observer, drain)

    context = Context.add(Context.add(context, Jobs.Jobs, jobs), JobsClient.JobsClient, client)

    // Tasks run only when the test says (runTasks): no loop claims their runs in the background.
    const taskManager = yield* TaskManager.make({
      store,
      node: testNode,
      nodeTimeoutMillis: 30_000,
      pollInterval: Duration.seconds(1),
      historyLimit: 100,
    })

    return {
      jobs,
      client,
      store,
      drain,
      mode: Effect.sync(() => mode),
      setMode: (next: Mode) =>
        Effect.sync(() => {
          mode = next
        }),
      /** Every job of these types in these states, all queues, once the cron ticks passed are enqueued. */
      jobsOf: (type: string, states: ReadonlyArray<JobState> | undefined) =>
        Effect.zipRight(
          cron.enqueueTicks,
          listAll(store, { type, ...(states === undefined ? {} : { state: states }) }),
        ),
      allJobs: Effect.zipRight(cron.enqueueTicks, listAll(store, {})),
      schedules: cron.schedules,
      tasks: taskManager.service,
      /** Runs the tasks due by the Clock, each once, and answers their runs. */
      runTasks: taskManager.runDue,
      /** Stores the schedules and registers the tasks: after the schema is emptied, or it would empty them. */
      declare: (schedules: ReadonlyArray<Schedules.CronSchedule>, tasks: ReadonlyArray<Task.Task>) =>
        Effect.zipRight(
          CronEnqueuer.declare(cron.enqueuer, schedules),
          TaskManager.declare(taskManager, tasks, (task) =>
            Effect.provide(taskManager.service.register(task), context),
          ),
        ),
    }
  })

export type TestNode = Effect.Effect.Success<ReturnType<typeof make>>
