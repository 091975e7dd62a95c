/**
 * Every failure a caller of effect-jobs can see. Each carries a message a person can act on.
 *
 * The file is longer than the others because it is the one list of them: a user matching on
 * `_tag` finds every failure here rather than beside the code that raises it.
 */
import { Schema } from "effect"

/** Options or arguments given to an operation are not acceptable; nothing was written. */
export class InvalidJobOptions extends Schema.TaggedError<InvalidJobOptions>()("InvalidJobOptions", {
  message: Schema.String,
}) {}

/**
 * An option of the runtime or of an engine is refused when the layer is built: `option` is its
 * path (`queues.mail.concurrency`, `handlers["send-email"].timeout`), `value` the value given.
 * Nothing was started.
 */
export class InvalidConfig extends Schema.TaggedError<InvalidConfig>()("InvalidConfig", {
  option: Schema.String,
  value: Schema.String,
  reason: Schema.String,
}) {
  override get message() {
    return `option ${this.option} is ${this.value}: ${this.reason}`
  }
}

/** The jobs schema was migrated by a newer version of effect-jobs than this one; nothing was changed. */
export class SchemaTooNew extends Schema.TaggedError<SchemaTooNew>()("SchemaTooNew", {
  schema: Schema.String,
  found: Schema.Number,
  supported: Schema.Number,
}) {
  override get message() {
    return `schema "${this.schema}" is at migration ${this.found}, newer than the ${this.supported} this version of effect-jobs knows: upgrade effect-jobs, or use another schema`
  }
}

/** Another live node already uses this node name (its heartbeat is fresher than `nodeTimeout`). */
export class NodeNameInUse extends Schema.TaggedError<NodeNameInUse>()("NodeNameInUse", {
  node: Schema.String,
}) {
  override get message() {
    return `node name "${this.node}" is held by a live node (its heartbeat is fresher than nodeTimeout): give each process its own name, or let the default pick one`
  }
}

/** A job's encoded arguments are larger than the configured `maxPayloadBytes`. */
export class PayloadTooLarge extends Schema.TaggedError<PayloadTooLarge>()("PayloadTooLarge", {
  type: Schema.String,
  bytes: Schema.Number,
  limit: Schema.Number,
}) {
  override get message() {
    return `the args of a "${this.type}" job encode to ${this.bytes} bytes, over the limit of ${this.limit} bytes (option maxPayloadBytes)`
  }
}

/**
 * The arguments did not encode with the job definition's Schema, or hold a value the jobs
 * table would not store as given (NaN, a NUL character, a Date where JSON is expected…).
 */
export class InvalidJobArgs extends Schema.TaggedError<InvalidJobArgs>()("InvalidJobArgs", {
  type: Schema.String,
  reason: Schema.String,
}) {
  override get message() {
    return `the args given for a "${this.type}" job were refused: ${this.reason}`
  }
}

/** No job has this id (it may have been pruned or deleted). */
export class JobNotFound extends Schema.TaggedError<JobNotFound>()("JobNotFound", {
  id: Schema.Number,
}) {
  override get message() {
    return `no job with id ${this.id}`
  }
}

/** The operation does not apply to a job in its current state; nothing was changed. */
export class JobStateConflict extends Schema.TaggedError<JobStateConflict>()("JobStateConflict", {
  id: Schema.Number,
  state: Schema.String,
  operation: Schema.String,
}) {
  override get message() {
    return `cannot ${this.operation} job ${this.id}: it is ${this.state}`
  }
}

/**
 * The queue is not running on this node; or, with `cluster` true (`queueInfo`, `deleteQueue`,
 * `pruneQueue`), the cluster knows no such queue: no live node runs it, no job is in it and
 * nothing is stored for it.
 */
export class QueueNotFound extends Schema.TaggedError<QueueNotFound>()("QueueNotFound", {
  queue: Schema.String,
  cluster: Schema.optional(Schema.Boolean),
  /** The live node asked for, which does not run the queue. */
  node: Schema.optional(Schema.String),
}) {
  override get message() {
    if (this.node !== undefined) return `queue "${this.queue}" does not run on a live node "${this.node}"`
    return this.cluster
      ? `queue "${this.queue}" is unknown: no live node runs it, no job is in it and nothing is stored for it`
      : `queue "${this.queue}" is not running on this node`
  }
}

/** `deleteQueue` was refused: live nodes run the queue. Nothing was deleted. */
export class QueueInUse extends Schema.TaggedError<QueueInUse>()("QueueInUse", {
  queue: Schema.String,
  nodes: Schema.Array(Schema.String),
}) {
  override get message() {
    return `queue "${this.queue}" runs on live node(s) ${this.nodes.join(", ")}: stop it there before deleting it`
  }
}

/**
 * `ensureQueue` found the queue running on this node with other settings. Nothing changed:
 * scale it with `scaleQueue`, or stop it and start it again with the new settings.
 */
export class QueueConfigConflict extends Schema.TaggedError<QueueConfigConflict>()("QueueConfigConflict", {
  queue: Schema.String,
  differences: Schema.Array(Schema.String),
}) {
  override get message() {
    return `queue "${this.queue}" already runs on this node with other settings (${this.differences.join("; ")}): scale it with scaleQueue, or stop it and start it again`
  }
}

/** `startQueue` was given a queue that already runs on this node. */
export class QueueAlreadyRunning extends Schema.TaggedError<QueueAlreadyRunning>()("QueueAlreadyRunning", {
  queue: Schema.String,
}) {
  override get message() {
    return `queue "${this.queue}" is already running on this node`
  }
}

/** The database could not be reached or rejected a statement. */
export class DatabaseError extends Schema.TaggedError<DatabaseError>()("DatabaseError", {
  operation: Schema.String,
  reason: Schema.String,
  /** The server's SQLSTATE (`23505` for a unique violation, say), when the server answered. */
  code: Schema.optional(Schema.String),
  cause: Schema.optional(Schema.Defect),
}) {
  override get message() {
    return `${this.operation} failed in the database: ${this.reason}${this.code === undefined ? "" : ` (SQLSTATE ${this.code})`}`
  }
}

/**
 * A supervised part of the runtime failed more often than its restart policy allows.
 * The runtime stops rather than carry on half-working.
 */
export class SupervisorEscalation extends Schema.TaggedError<SupervisorEscalation>()("SupervisorEscalation", {
  child: Schema.String,
  restarts: Schema.Number,
  reason: Schema.String,
}) {
  override get message() {
    return `"${this.child}" failed ${this.restarts + 1} times within its restart window; last failure: ${this.reason}`
  }
}

/** A handler ran longer than its definition's `timeout` and was interrupted. */
export class JobTimeout extends Schema.TaggedError<JobTimeout>()("JobTimeout", {
  timeoutMillis: Schema.Number,
}) {
  override get message() {
    return `the handler ran over its timeout of ${this.timeoutMillis} ms and was interrupted`
  }
}

/** A stored job names a type that has no handler on this node. */
export class UnknownJobType extends Schema.TaggedError<UnknownJobType>()("UnknownJobType", {
  type: Schema.String,
  node: Schema.String,
}) {
  override get message() {
    return `no handler for job type "${this.type}" is registered on node ${this.node}`
  }
}

/**
 * What a handler returned could not be stored as its job's result (JSON cannot carry it: a
 * BigInt, a cycle, a `toJSON` that throws). Counted as a failed attempt and retried.
 */
export class UnstorableOutcome extends Schema.TaggedError<UnstorableOutcome>()("UnstorableOutcome", {
  reason: Schema.String,
}) {
  override get message() {
    return `the result of this attempt could not be stored: ${this.reason}`
  }
}

/** The stored args no longer decode with the handler's Schema. */
export class ArgsDecodeError extends Schema.TaggedError<ArgsDecodeError>()("ArgsDecodeError", {
  type: Schema.String,
  reason: Schema.String,
}) {
  override get message() {
    return `the stored args of a "${this.type}" job no longer decode: ${this.reason}`
  }
}

/** A filter written as text (`args.user.id:42`) could not be read; nothing was queried. */
export class InvalidJobFilter extends Schema.TaggedError<InvalidJobFilter>()("InvalidJobFilter", {
  filter: Schema.String,
  reason: Schema.String,
}) {
  override get message() {
    return `filter ${JSON.stringify(this.filter)} is not valid: ${this.reason}`
  }
}

/** A job read through a definition is of another type. */
export class JobTypeMismatch extends Schema.TaggedError<JobTypeMismatch>()("JobTypeMismatch", {
  id: Schema.Number,
  expected: Schema.String,
  actual: Schema.String,
}) {
  override get message() {
    return `job ${this.id} is a "${this.actual}" job, not a "${this.expected}" one`
  }
}

/** A job read through its definition holds args or a result that its Schema does not decode. */
export class JobDecodeError extends Schema.TaggedError<JobDecodeError>()("JobDecodeError", {
  id: Schema.Number,
  type: Schema.String,
  field: Schema.Literal("args", "result"),
  reason: Schema.String,
}) {
  override get message() {
    return `the stored ${this.field} of "${this.type}" job ${this.id} ${this.field === "args" ? "do" : "does"} not decode with its definition: ${this.reason}`
  }
}

/** A cron schedule was refused (bad name, expression, time zone, args or options); nothing was stored. */
export class InvalidSchedule extends Schema.TaggedError<InvalidSchedule>()("InvalidSchedule", {
  schedule: Schema.String,
  reason: Schema.String,
}) {
  override get message() {
    return `cron schedule "${this.schedule}" is not valid: ${this.reason}`
  }
}

/** No cron schedule has this name. */
export class ScheduleNotFound extends Schema.TaggedError<ScheduleNotFound>()("ScheduleNotFound", {
  schedule: Schema.String,
}) {
  override get message() {
    return `no cron schedule is named "${this.schedule}"`
  }
}

/** A recurring task was refused (bad id, name, interval, expression or initial state); nothing changed. */
export class InvalidTask extends Schema.TaggedError<InvalidTask>()("InvalidTask", {
  task: Schema.String,
  reason: Schema.String,
}) {
  override get message() {
    return `task "${this.task}" is not valid: ${this.reason}`
  }
}

/** `register` was given a task id this node's task manager already has. */
export class TaskAlreadyRegistered extends Schema.TaggedError<TaskAlreadyRegistered>()(
  "TaskAlreadyRegistered",
  {
    task: Schema.String,
  },
) {
  override get message() {
    return `a task with id "${this.task}" is already registered on this node`
  }
}

/** The task id is not registered on this node. */
export class TaskNotRegistered extends Schema.TaggedError<TaskNotRegistered>()("TaskNotRegistered", {
  task: Schema.String,
}) {
  override get message() {
    return `no task with id "${this.task}" is registered on this node`
  }
}

/** `runNow` found the task already running (here or on another node). */
export class TaskAlreadyRunning extends Schema.TaggedError<TaskAlreadyRunning>()("TaskAlreadyRunning", {
  task: Schema.String,
  node: Schema.String,
}) {
  override get message() {
    return `task "${this.task}" is already running on node ${this.node}`
  }
}

/** No task with this id is stored: no node has ever registered it. */
export class TaskNotFound extends Schema.TaggedError<TaskNotFound>()("TaskNotFound", {
  task: Schema.String,
}) {
  override get message() {
    return `no task with id "${this.task}" is stored`
  }
}

/**
 * A task's stored state (its current one, or that of a run in its history) does not decode
 * with the Schema of the definition it was read through: the Schema changed incompatibly, or
 * the definition is another task's.
 */
export class TaskStateDecodeError extends Schema.TaggedError<TaskStateDecodeError>()("TaskStateDecodeError", {
  task: Schema.String,
  /** The run whose state does not decode; absent for the task's current state. */
  run: Schema.optional(Schema.Number),
  reason: Schema.String,
}) {
  override get message() {
    return `the stored state of task "${this.task}"${this.run === undefined ? "" : ` after run ${this.run}`} does not decode with its Schema: ${this.reason}`
  }
}

/**
 * The jobs schema is not at the level this version of effect-jobs works with: missing, older
 * (a worker of this version, or `migrate: true`, brings it up) or newer (this app runs an
 * older effect-jobs than the workers). Nothing was changed.
 */
export class SchemaNotReady extends Schema.TaggedError<SchemaNotReady>()("SchemaNotReady", {
  schema: Schema.String,
  /** The newest migration applied to the schema; 0 when it has none. */
  found: Schema.Number,
  /** The newest migration this version of effect-jobs knows. */
  expected: Schema.Number,
}) {
  override get message() {
    if (this.found === 0) {
      return `the jobs schema "${this.schema}" does not exist or has no migrations: start a worker (Jobs.layer) first, or build the client with migrate: true`
    }
    if (this.found < this.expected) {
      return `the jobs schema "${this.schema}" is at migration ${this.found}, and this version of effect-jobs needs ${this.expected}: start a worker of this version first (it migrates), or build the client with migrate: true`
    }
    return `the jobs schema "${this.schema}" is at migration ${this.found}, newer than the ${this.expected} this version of effect-jobs knows: upgrade effect-jobs in this app to the workers' version`
  }
}

/**
 * The PGlite data directory is open in another process (or another layer of this one).
 * PGlite is a single session: a second opener would not see the first one's writes.
 */
export class DataDirLocked extends Schema.TaggedError<DataDirLocked>()("DataDirLocked", {
  dataDir: Schema.String,
  pid: Schema.Number,
  host: Schema.String,
  /** When the holder opened the directory. */
  since: Schema.DateFromSelf,
}) {
  override get message() {
    return `the PGlite data directory ${this.dataDir} is in use by process ${this.pid} on ${this.host} since ${this.since.toISOString()}: stop that process, or use another directory`
  }
}

/** An engine's optional peer dependency is not installed in the app (e.g. `@electric-sql/pglite` for `JobsPglite`). */
export class EngineNotInstalled extends Schema.TaggedError<EngineNotInstalled>()("EngineNotInstalled", {
  engine: Schema.String,
  dependency: Schema.String,
  reason: Schema.String,
}) {
  override get message() {
    return `${this.engine} needs the package ${this.dependency}, which could not be loaded (${this.reason}): install it with \`npm install ${this.dependency}\``
  }
}

/** Fail a handler with this to run the job again after `delayMillis`, without using up an attempt. */
export class JobSnooze extends Schema.TaggedError<JobSnooze>()("JobSnooze", { delayMillis: Schema.Number }) {
  override get message() {
    return `snoozed for ${this.delayMillis} ms`
  }
}

/** Fail a handler with this to end the job as `cancelled`. */
export class JobCancel extends Schema.TaggedError<JobCancel>()("JobCancel", { reason: Schema.String }) {
  override get message() {
    return `cancelled: ${this.reason}`
  }
}

/** Fail a handler with this to end the job as `discarded`, whatever attempts it has left. */
export class JobDiscard extends Schema.TaggedError<JobDiscard>()("JobDiscard", { reason: Schema.String }) {
  override get message() {
    return `discarded: ${this.reason}`
  }
}

/**
 * `Jobs.layer` was built on `@effect/vitest`'s `TestClock` (`it.effect`, `it.scoped`): the
 * runtime's local waits (polling, heartbeats, the wait for LISTEN) would never end, so it
 * refuses to start instead of hanging. Nothing was started.
 */
export class TestClockInUse extends Schema.TaggedError<TestClockInUse>()("TestClockInUse", {}) {
  override get message() {
    return "Jobs.layer cannot run on the TestClock (it.effect, it.scoped), whose time moves only when a test adjusts it: run the test with it.live (or a layer with excludeTestServices), or test the jobs with the layer from effect-jobs/testing, which follows the TestClock"
  }
}

/** An assertion of `effect-jobs/testing` (`assertEnqueued`, `refuteEnqueued`) did not hold; the message lists the jobs found. */
export class JobAssertionFailed extends Schema.TaggedError<JobAssertionFailed>()("JobAssertionFailed", {
  message: Schema.String,
}) {}

/**
 * The `effect-jobs` command line was given something it cannot act on (no database, a
 * malformed filter or JSON value, an unknown migration); nothing was changed.
 */
export class InvalidCommand extends Schema.TaggedError<InvalidCommand>()("InvalidCommand", {
  message: Schema.String,
}) {}
