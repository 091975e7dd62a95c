/**
 * The task manager of one node: the tasks it registered, a loop that claims their due runs,
 * and the runs themselves. The store claims a run for one node at a time and writes its
 * outcome exactly once (see store/tasks.ts); a run cut short by a crash is run again from the
 * state before it.
 */
import { randomUUID } from "node:crypto"
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
  PubSub,
  Queue,
  Schema,
  type Scope,
  Stream,
} from "effect"
import { InvalidTask, TaskAlreadyRegistered, TaskAlreadyRunning, TaskNotRegistered } from "../../JobError.js"
import type * as Task from "../../Task.js"
import { TaskEvent } from "../../TaskEvent.js"
import type * as Tasks from "../../Tasks.js"
import { retryDatabase, toDatabaseError } from "../store/retryDatabase.js"
import type { ClaimedTask, Store, TaskOutcome } from "../store/store.js"
import { asApp } from "../tracing/quiet.js"
import * as Control from "./control.js"
import * as Reads from "./reads.js"

interface Entry {
  readonly task: Task.Task
  readonly context: Context.Context<unknown>
  readonly cron: Cron.Cron | undefined
  readonly everyMillis: number | undefined
  /** The encoded initial state, as JSON, as registered: what a defect resets the state to. */
  readonly initialJson: string
}

export interface TaskEnvironment {
  readonly store: Store
  readonly node: string
  /** A node silent for this long is taken for dead; its runs may be claimed again. */
  readonly nodeTimeoutMillis: number
  /** How often the loop looks for due runs when nothing woke it. */
  readonly pollInterval: Duration.Duration
  /** Runs kept per task. */
  readonly historyLimit: number
  /** How many events a subscriber may fall behind before it loses the oldest. Defaults to 4,096. */
  readonly eventsCapacity?: number | undefined
}

/** Publishes an event of a run; never waits. */
type Publish = (event: TaskEvent) => void

/** The event a recorded outcome publishes; none for a run cut short. */
const outcomeEvent = (
  common: Omit<TaskEvent, "_tag">,
  outcome: TaskOutcome,
  durationMillis: number,
): TaskEvent | undefined => {
  switch (outcome.kind) {
    case "success":
      return TaskEvent.Succeeded({ ...common, durationMillis })
    case "failure":
      return TaskEvent.Failed({ ...common, durationMillis, error: outcome.error })
    case "defect":
      return TaskEvent.Reset({ ...common, durationMillis, error: outcome.error })
    case "interrupted":
      return undefined
  }
}

const idPattern = /^[^\p{Cc}]{1,200}$/u
const maxErrorLength = 4000

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

/** A task's schedule, checked: a cron expression, or an interval (zero: run once). */
const checkSchedule = (task: Task.Task, refuse: (reason: string) => InvalidTask) =>
  Effect.gen(function* () {
    if ((task.every === undefined) === (task.cron === undefined)) {
      return yield* refuse("give either every (an interval) or cron (an expression)")
    }
    if (task.cron !== undefined) {
      const parsed = Cron.parse(task.cron, task.timezone)
      if (Either.isLeft(parsed)) {
        return yield* refuse(
          `cron ${JSON.stringify(task.cron)}${task.timezone === undefined ? "" : ` in time zone ${JSON.stringify(task.timezone)}`}: ${parsed.left.message}`,
        )
      }
      return { cron: parsed.right, everyMillis: undefined }
    }
    if (task.timezone !== undefined) return yield* refuse("a time zone applies only to a cron task")
    const decoded = Duration.decodeUnknown(task.every)
    if (Option.isNone(decoded) || !Duration.isFinite(decoded.value)) {
      return yield* refuse(`every must be a finite duration (zero to run once), got ${String(task.every)}`)
    }
    return { cron: undefined, everyMillis: Duration.toMillis(decoded.value) }
  })

/** Checks a task and computes what is stored for it; nothing is written. */
export const prepare = (task: Task.Task) =>
  Effect.gen(function* () {
    const refuse = (reason: string) => new InvalidTask({ task: String(task.id), reason })
    if (typeof task.id !== "string" || !idPattern.test(task.id) || task.id.trim() === "") {
      return yield* refuse("its id must be 1 to 200 characters, not all spaces, without control characters")
    }
    if (typeof task.name !== "string" || !idPattern.test(task.name)) {
      return yield* refuse("its name must be 1 to 200 characters without control characters")
    }
    const schedule = yield* checkSchedule(task, refuse)
    const initial = Schema.encodeEither(task.stateSchema)(task.initial)
    if (Either.isLeft(initial)) {
      return yield* refuse(
        `its initial state does not fit its Schema: ${ParseResult.TreeFormatter.formatErrorSync(initial.left)}`,
      )
    }
    return { ...schedule, initialJson: JSON.stringify(initial.right) }
  })

const nextRun = (entry: Entry, after: number): Date | null =>
  entry.cron !== undefined
    ? Cron.next(entry.cron, new Date(after))
    : entry.everyMillis! > 0
      ? new Date(after + entry.everyMillis!)
      : null

/** How a run's exit is recorded. */
const outcomeOf = (entry: Entry, exit: Exit.Exit<unknown, unknown>): TaskOutcome => {
  if (Exit.isSuccess(exit)) {
    const encoded = Schema.encodeEither(entry.task.stateSchema)(exit.value)
    return Either.isRight(encoded)
      ? { kind: "success", state: encoded.right }
      : {
          kind: "defect",
          error: `the returned state does not fit the Schema: ${ParseResult.TreeFormatter.formatErrorSync(encoded.left)}`,
        }
  }
  if (Cause.isInterruptedOnly(exit.cause)) return { kind: "interrupted" }
  const failure = Cause.failureOption(exit.cause)
  return Option.isSome(failure)
    ? { kind: "failure", error: clip(describeError(failure.value)) }
    : { kind: "defect", error: clip(Cause.pretty(exit.cause)) }
}

const logOutcome = (entry: Entry, outcome: TaskOutcome) =>
  outcome.kind === "failure"
    ? Effect.logWarning(`task "${entry.task.id}" failed: ${outcome.error}`)
    : outcome.kind === "defect"
      ? Effect.logError(`task "${entry.task.id}" died and is reset to its initial state: ${outcome.error}`)
      : Effect.void

/**
 * One claimed run: decode the stored state, run, and record what happened. The run itself
 * is interruptible (shutdown, unregister); recording is not.
 */
const execute = (
  env: TaskEnvironment,
  publish: Publish,
  entry: Entry,
  claimed: ClaimedTask,
  trigger: "schedule" | "manual",
) =>
  Effect.uninterruptibleMask((restore) =>
    Effect.gen(function* () {
      const startedAt = yield* Clock.currentTimeMillis
      const common = { taskId: entry.task.id, taskName: entry.task.name, node: env.node, trigger }
      publish(TaskEvent.Started({ ...common, at: new Date(startedAt) }))
      const decoded = Schema.decodeUnknownEither(entry.task.stateSchema)(claimed.state)
      const exit = Either.isLeft(decoded)
        ? Exit.die(
            new Error(
              `the stored state no longer decodes: ${ParseResult.TreeFormatter.formatErrorSync(decoded.left)}`,
            ),
          )
        : yield* Effect.exit(
            restore(
              asApp(
                Effect.provide(
                  Effect.suspend(() => entry.task.run(decoded.right)),
                  entry.context,
                ),
              ),
            ),
          )
      const finishedAt = yield* Clock.currentTimeMillis
      const outcome = outcomeOf(entry, exit)
      yield* logOutcome(entry, outcome)
      const run = yield* env.store
        .finishTaskRun({
          run: claimed,
          node: env.node,
          trigger,
          outcome,
          startedAt: new Date(startedAt),
          finishedAt: new Date(finishedAt),
          nextRunAt: nextRun(entry, finishedAt),
          initialJson: entry.initialJson,
          historyLimit: env.historyLimit,
        })
        .pipe(retryDatabase(`recording a run of task "${entry.task.id}"`))
      if (run === undefined) {
        yield* Effect.logWarning(
          `task "${entry.task.id}" was taken over by another node while it ran here; this run's outcome is dropped`,
        )
      } else {
        const event = outcomeEvent({ ...common, at: new Date(finishedAt) }, outcome, finishedAt - startedAt)
        if (event !== undefined) publish(event)
      }
      return run
    }),
  ).pipe(Effect.annotateLogs({ task: entry.task.id }))

/** What the parts of one node's task manager share. */
interface Manager {
  readonly env: TaskEnvironment
  /** The tasks registered here, by id. */
  readonly registered: Map<string, Entry>
  /** The runs under way here, by task id. */
  readonly running: FiberMap.FiberMap<string>
  /** Wakes the loop before its sleep ends. */
  readonly wake: Queue.Queue<void>
  /**
   * Claims take turns, so this node never claims a run it has under way: the store takes a
   * run marked as this node's for one left by an earlier process of the same name.
   */
  readonly claiming: Effect.Semaphore
  readonly publish: Publish
}

/** Starts a claimed run; its end wakes the loop, since the task's next due time is set then. */
const start = (m: Manager, entry: Entry, claimed: ClaimedTask, trigger: "schedule" | "manual") =>
  FiberMap.run(
    m.running,
    entry.task.id,
    Effect.ensuring(execute(m.env, m.publish, entry, claimed, trigger), Queue.offer(m.wake, undefined)),
  )

/** The loop that claims and starts the due runs of the tasks registered here. */
const dueLoop = (m: Manager) => {
  const { env, registered, running } = m
  /**
   * Claims every due run of the tasks registered here and starts them; answers the runs started
   * and when the next of the others is due (null when none is, or nothing is registered).
   */
  const claimDue = Effect.gen(function* () {
    const started: Array<Fiber.RuntimeFiber<Tasks.TaskRun | undefined>> = []
    if (registered.size === 0) return { started, next: null }
    const now = yield* Clock.currentTimeMillis
    const idle = Array.from(registered.keys()).filter((id) => !FiberMap.unsafeHas(running, id))
    if (idle.length === 0) return { started, next: null }
    const claimed = yield* env.store
      .claimDueTasks(idle, env.node, env.nodeTimeoutMillis, randomUUID(), new Date(now))
      .pipe(retryDatabase("claiming due tasks"))
    for (const run of claimed) {
      const entry = registered.get(run.id)
      // Unregistered meanwhile: hand the run back at once.
      if (entry === undefined) continue
      started.push(yield* start(m, entry, run, run.requestedAt === null ? "schedule" : "manual"))
    }
    const waiting = idle.filter((id) => !claimed.some((run) => run.id === id))
    if (waiting.length === 0) return { started, next: null }
    const next = yield* env.store
      .nextTaskRunAt(waiting, new Date(now))
      .pipe(retryDatabase("reading when tasks are due"))
    return { started, next }
  }).pipe(m.claiming.withPermits(1))

  const round = Effect.map(claimDue, ({ next }) => next)

  /** The due runs, started and awaited: for a caller that drives the clock itself (tests). */
  const runDue = Effect.flatMap(claimDue, ({ started }) =>
    Effect.map(Effect.forEach(started, Fiber.join), (runs) => runs.filter((run) => run !== undefined)),
  )

  // The loop sleeps until the next task here is due, or pollInterval at most: a run that
  // another node finished, or a task registered elsewhere, changes the due times it read.
  const run = Effect.forever(
    Effect.gen(function* () {
      const next = yield* round
      const now = yield* Clock.currentTimeMillis
      const wait =
        next === null
          ? env.pollInterval
          : Duration.min(env.pollInterval, Duration.millis(Math.max(0, next.getTime() - now)))
      yield* Effect.raceFirst(Effect.sleep(wait), Queue.take(m.wake))
    }),
  )
  return { round, run, runDue }
}

/** Registering a task here (which stores it) and unregistering it (which cuts its run short). */
const registration = (m: Manager) => {
  const { env, registered } = m
  const register = <S, E, R>(task: Task.Task<S, E, R>) =>
    Effect.gen(function* () {
      const checked = yield* prepare(task as Task.Task)
      if (registered.has(task.id)) return yield* new TaskAlreadyRegistered({ task: task.id })
      const context = yield* Effect.context<R>()
      const now = yield* Clock.currentTimeMillis
      const entry: Entry = {
        task: task as Task.Task,
        context: context as Context.Context<unknown>,
        cron: checked.cron,
        everyMillis: checked.everyMillis,
        initialJson: checked.initialJson,
      }
      const stats = yield* env.store
        .registerTask(
          {
            id: task.id,
            name: task.name,
            everyMillis: checked.everyMillis ?? null,
            expression: task.cron ?? null,
            timezone: task.cron === undefined ? null : (task.timezone ?? null),
            hidden: task.hidden,
            initialJson: checked.initialJson,
            // A task that runs once is first due now.
            firstRunAt: nextRun(entry, now) ?? new Date(now),
          },
          env.node,
          new Date(now),
          env.nodeTimeoutMillis,
        )
        .pipe(Effect.mapError(toDatabaseError(`registering task "${task.id}"`)))
      // Checked again: another fiber may have registered the id while the row was written.
      if (registered.has(task.id)) return yield* new TaskAlreadyRegistered({ task: task.id })
      registered.set(task.id, entry)
      yield* Queue.offer(m.wake, undefined)
      return stats
    })

  const unregister = (id: string) =>
    Effect.gen(function* () {
      if (!registered.has(id)) return yield* new TaskNotRegistered({ task: id })
      yield* env.store
        .unregisterTask(id, env.node)
        .pipe(Effect.mapError(toDatabaseError(`unregistering task "${id}"`)))
      registered.delete(id)
      yield* FiberMap.remove(m.running, id)
    })
  return { register, unregister }
}

/** Runs a registered task now, due or not, and answers the run; fails when it runs anywhere already. */
const runNow = (m: Manager) => {
  const { env } = m
  const startNow = (id: string, entry: Entry) =>
    Effect.gen(function* () {
      if (FiberMap.unsafeHas(m.running, id))
        return yield* new TaskAlreadyRunning({ task: id, node: env.node })
      const now = yield* Clock.currentTimeMillis
      const claimed = yield* env.store
        .claimTask(id, env.node, env.nodeTimeoutMillis, randomUUID(), new Date(now))
        .pipe(Effect.mapError(toDatabaseError(`claiming task "${id}"`)))
      if (claimed === undefined) {
        const runBy = yield* env.store
          .taskRunBy(id)
          .pipe(Effect.mapError(toDatabaseError(`reading task "${id}"`)))
        return yield* new TaskAlreadyRunning({ task: id, node: runBy ?? "unknown" })
      }
      return yield* start(m, entry, claimed, "manual")
    }).pipe(m.claiming.withPermits(1))

  return (id: string) =>
    Effect.gen(function* () {
      const entry = m.registered.get(id)
      if (entry === undefined) return yield* new TaskNotRegistered({ task: id })
      const run = yield* Fiber.join(yield* startNow(id, entry))
      if (run === undefined) return yield* new TaskAlreadyRunning({ task: id, node: "another node" })
      return run
    })
}

export const make = (env: TaskEnvironment) =>
  Effect.gen(function* () {
    const events = yield* Effect.acquireRelease(
      PubSub.sliding<TaskEvent>(env.eventsCapacity ?? 4096),
      PubSub.shutdown,
    )
    const m: Manager = {
      publish: (event) => {
        events.unsafeOffer(event)
      },
      env,
      registered: new Map(),
      running: yield* FiberMap.make<string>(),
      wake: yield* Queue.sliding<void>(1),
      claiming: yield* Effect.makeSemaphore(1),
    }
    // Registrations an earlier process of this name left are not this one's; this one's go
    // when it stops. Only listings read them, so a failure here is logged, not fatal.
    const forgetRegistrations = env.store
      .forgetTaskNodes(env.node)
      .pipe(
        Effect.catchAll((error) =>
          Effect.logWarning(`forgetting this node's task registrations failed: ${error.message}`),
        ),
      )
    yield* forgetRegistrations
    yield* Effect.addFinalizer(() => forgetRegistrations)

    const { round, run, runDue } = dueLoop(m)
    const { register, unregister } = registration(m)
    const { stats, history } = Reads.make(env.store, env.nodeTimeoutMillis)
    const controls = Control.make(env.store, env.nodeTimeoutMillis)
    const service: Tasks.Tasks["Type"] = {
      register,
      unregister,
      runNow: runNow(m),
      ...controls,
      stats,
      history,
      events: Stream.fromPubSub(events),
    }
    // A task signal (a resume, a requested run) sends the loop looking for runs at once.
    const wake = Queue.offer(m.wake, undefined)
    return { service, run, round, runDue, prepare, wake } as const
  }) satisfies Effect.Effect<unknown, never, Scope.Scope>

/**
 * Tasks declared by a node's options: every one checked first (ids unique, definition), then
 * registered, so one bad task registers none. `register` runs each registration, in the
 * context the caller gives it.
 */
export const declare = <E, R>(
  manager: Effect.Effect.Success<ReturnType<typeof make>>,
  tasks: ReadonlyArray<Task.Task>,
  register: (task: Task.Task) => Effect.Effect<unknown, E, R>,
) =>
  Effect.gen(function* () {
    const ids = new Set<string>()
    for (const task of tasks) {
      if (ids.has(task.id)) return yield* new TaskAlreadyRegistered({ task: task.id })
      ids.add(task.id)
      yield* manager.prepare(task)
    }
    for (const task of tasks) yield* register(task)
  })
