/**
 * The runtime's options, decoded once with Schema when the layer is built. A setting that would
 * break the runtime (a hot loop, a live node taken for dead, outcomes never written) is refused
 * here with one typed error, `InvalidConfig`, naming the option and the value given; the rest of
 * the runtime reads the decoded, typed `RuntimeConfig` and never the raw options.
 *
 * Values may come from code or from `Config` (the environment, as strings): durations accept a
 * `DurationInput` or a number of milliseconds written as a string, so `"5000"` and
 * `"5 seconds"` mean the same.
 *
 * The file is longer than the others because every option's schema, default and refusal
 * belong together: the limits that keep the runtime safe (heartbeat against node timeout,
 * batch sizes against the pool) compare options with one another, and read as one list.
 */
import { randomBytes } from "node:crypto"
import { hostname } from "node:os"
import { Config, type ConfigError, Duration, Effect, Either, Option, ParseResult, Schema } from "effect"
import * as Hook from "../Hook.js"
import type * as Job from "../Job.js"
import { InvalidConfig, InvalidJobOptions } from "../JobError.js"
import type * as Schedules from "../Schedules.js"
import type * as Task from "../Task.js"
import type * as Jobs from "./api/service.js"
import { maxInt, maxSmallint, minSmallint } from "./api/validation.js"
import type { RestartPolicy } from "./supervisor.js"

/** A node name travels in every ping the node NOTIFYs; PostgreSQL caps a payload at 8,000 bytes. */
export const maxNodeNameLength = 200

const queuePattern = /^[A-Za-z0-9_][A-Za-z0-9_.:-]{0,127}$/
const schemaPattern = /^[a-z_][a-z0-9_]{0,47}$/

const refuse = <A>(is: (u: unknown) => u is A, expected: string) =>
  Schema.declare(is, { message: () => expected })

const wholeNumber = (min: number, max: number) =>
  refuse(
    (u): u is number => typeof u === "number" && Number.isInteger(u) && u >= min && u <= max,
    `must be a whole number from ${min} to ${max}`,
  )

const queueNameRule = `must be 1 to 128 letters, digits, "_", ".", ":" or "-", not starting with a punctuation mark`
const QueueName = Schema.String.pipe(
  Schema.filter((name) => queuePattern.test(name), { message: () => queueNameRule }),
)

/** A duration from code or from the environment; undefined when `u` is none. */
const durationOf = (u: unknown): Duration.Duration | undefined => {
  if (typeof u === "string" && /^\s*\d+(\.\d+)?\s*$/.test(u)) return Duration.millis(Number(u))
  // Duration.decode reads NaN and negative amounts as zero: they must be refused, not read so.
  if (typeof u === "number" && !(u >= 0)) return undefined
  if (typeof u === "string" && u.trim().startsWith("-")) return undefined
  return Option.getOrUndefined(Duration.decodeUnknown(u))
}

const duration = (accept: (d: Duration.Duration) => boolean, expected: string) =>
  Schema.transformOrFail(Schema.Unknown, Schema.DurationFromSelf, {
    strict: true,
    decode: (u, _, ast) => {
      const d = durationOf(u)
      return d !== undefined && accept(d)
        ? ParseResult.succeed(d)
        : ParseResult.fail(new ParseResult.Type(ast, u, expected))
    },
    encode: ParseResult.succeed,
  })

/** Intervals of loops: zero would spin, infinite would never run. */
const Interval = duration(
  (d) => Duration.isFinite(d) && Duration.greaterThan(d, Duration.zero),
  `must be a finite duration longer than zero, such as "5 seconds" or a number of milliseconds`,
)
const Retention = duration(
  Duration.isFinite,
  `must be a finite duration of zero or more, such as "7 days" or a number of milliseconds`,
)
const Timeout = duration(
  () => true,
  `must be a duration of zero or more, such as "15 seconds" or a number of milliseconds`,
)

const withDefault = <A, I, R>(schema: Schema.Schema<A, I, R>, value: () => A) =>
  Schema.optionalWith(schema, { default: value })

/** A field holding `false` (turned off) or a struct of settings whose absence means the defaults. */
const orOff = <A, R>(struct: Schema.Schema<A, any, R>) =>
  Schema.transformOrFail(Schema.Unknown, Schema.Union(Schema.Literal(false), Schema.typeSchema(struct)), {
    strict: true,
    decode: (u) =>
      u === false ? ParseResult.succeed(false as const) : ParseResult.decodeUnknown(struct)(u ?? {}),
    encode: ParseResult.succeed,
  })

const hookFields = ["around", ...Object.values(Hook.callbackOf)] as const

/** A list of hooks: each an object with a name, and functions where it has middleware or callbacks. */
const isHookList = (u: unknown): u is ReadonlyArray<Hook.Any> =>
  Array.isArray(u) &&
  u.every(
    (hook) =>
      typeof hook === "object" &&
      hook !== null &&
      typeof hook.name === "string" &&
      hook.name.length > 0 &&
      hookFields.every((field) => hook[field] === undefined || typeof hook[field] === "function"),
  )

export const hookListRule = `must be a list of hooks, each with a non-empty name and functions for its middleware (around) and callbacks (${Object.values(Hook.callbackOf).join(", ")})`

const QueueStruct = Schema.Struct({
  concurrency: wholeNumber(1, 10_000),
  paused: Schema.optional(refuse((u): u is boolean => typeof u === "boolean", "must be true or false")),
  pollInterval: Schema.optional(Interval),
  globalLimit: Schema.optional(wholeNumber(1, 1_000_000)),
  rateLimit: Schema.optional(Schema.Struct({ limit: wholeNumber(1, 1_000_000_000), period: Interval })),
  deadLetter: Schema.optional(QueueName),
  hooks: Schema.optional(refuse(isHookList, hookListRule)),
})

/** A queue's settings: its concurrency alone, or a `QueueConfig`. */
const QueueEntry = Schema.transformOrFail(Schema.Unknown, Schema.typeSchema(QueueStruct), {
  strict: true,
  decode: (u) =>
    ParseResult.decodeUnknown(QueueStruct)(typeof u === "object" && u !== null ? u : { concurrency: u }),
  encode: ParseResult.succeed,
})

const Settings = Schema.Struct({
  schema: withDefault(
    refuse(
      (u): u is string => typeof u === "string" && schemaPattern.test(u),
      `must be lowercase letters, digits and "_", at most 48, not starting with a digit`,
    ),
    () => "effect_jobs",
  ),
  node: Schema.optional(
    refuse(
      (u): u is string =>
        typeof u === "string" && u.length > 0 && u.length <= maxNodeNameLength && !/\p{Cc}/u.test(u),
      `must be 1 to ${maxNodeNameLength} characters, none of them control characters (it travels in notifications)`,
    ),
  ),
  queues: withDefault(Schema.Record({ key: Schema.String, value: QueueEntry }), () => ({
    default: { concurrency: 10 },
  })),
  pollInterval: withDefault(Interval, () => Duration.seconds(1)),
  stageInterval: withDefault(Interval, () => Duration.seconds(1)),
  shutdownTimeout: withDefault(Timeout, () => Duration.seconds(15)),
  heartbeatInterval: withDefault(Interval, () => Duration.seconds(5)),
  nodeTimeout: withDefault(Interval, () => Duration.seconds(30)),
  pingInterval: withDefault(Interval, () => Duration.seconds(5)),
  orphanInterval: withDefault(Interval, () => Duration.minutes(1)),
  maxPayloadBytes: withDefault(wholeNumber(1, 1024 * 1024 * 1024), () => 1024 * 1024),
  completionBatchSize: withDefault(wholeNumber(1, 100_000), () => 1000),
  eventsCapacity: withDefault(wholeNumber(1, 16_777_216), () => 4096),
  maxRescues: withDefault(wholeNumber(1, maxInt), () => 3),
  taskHistory: withDefault(wholeNumber(0, 1_000_000), () => 100),
  progressInterval: withDefault(Interval, () => Duration.seconds(1)),
  tracing: Schema.optional(refuse((u): u is boolean => typeof u === "boolean", "must be true or false")),
  traceLinking: withDefault(
    refuse(
      (u): u is "link" | "parent" | "none" => u === "link" || u === "parent" || u === "none",
      'must be "link", "parent" or "none"',
    ),
    () => "link" as const,
  ),
  prune: withDefault(
    orOff(
      Schema.Struct({
        completed: withDefault(Retention, () => Duration.days(1)),
        cancelled: withDefault(Retention, () => Duration.days(7)),
        discarded: withDefault(Retention, () => Duration.days(7)),
        interval: withDefault(Interval, () => Duration.minutes(1)),
        batchSize: withDefault(wholeNumber(1, 1_000_000), () => 10_000),
      }),
    ),
    () => ({
      completed: Duration.days(1),
      cancelled: Duration.days(7),
      discarded: Duration.days(7),
      interval: Duration.minutes(1),
      batchSize: 10_000,
    }),
  ),
  vacuum: withDefault(
    orOff(
      Schema.Struct({
        when: withDefault(
          refuse((u): u is "auto" | "always" => u === "auto" || u === "always", `must be "auto" or "always"`),
          () => "auto" as const,
        ),
        interval: withDefault(Interval, () => Duration.seconds(30)),
      }),
    ),
    () => ({ when: "auto" as const, interval: Duration.seconds(30) }),
  ),
  restartPolicy: withDefault(
    Schema.Struct({
      maxRestarts: Schema.optional(wholeNumber(0, 1_000_000)),
      window: Schema.optional(Interval),
      baseDelay: Schema.optional(Interval),
      maxDelay: Schema.optional(Interval),
    }),
    () => ({}),
  ),
})

type Settings = typeof Settings.Type

/** The runtime's options, decoded: every duration a `Duration`, every default applied. */
export interface RuntimeConfig extends Omit<Settings, "node" | "queues" | "restartPolicy"> {
  readonly node: string
  readonly queues: ReadonlyMap<string, Jobs.QueueConfig<any>>
  readonly handlers: ReadonlyMap<string, Job.Handler<any>>
  readonly restartPolicy: RestartPolicy
  readonly schedules: ReadonlyArray<Schedules.CronSchedule>
  readonly tasks: ReadonlyArray<Task.Task>
}

/** How a value given for an option reads in an error message. */
export const showValue = (value: unknown): string => {
  if (value === undefined) return "missing"
  if (typeof value === "number" || typeof value === "bigint") return String(value)
  if (Duration.isDuration(value)) return Duration.format(value)
  try {
    const json = JSON.stringify(value)
    if (json === undefined) return String(value)
    if (json.length <= 120) return json
    return `${json.slice(0, 100)}... (${typeof value === "string" ? `${value.length} characters` : `${json.length} characters of JSON`})`
  } catch {
    return String(value)
  }
}

const formatPath = (path: ReadonlyArray<PropertyKey>) =>
  path
    .map((key, i) =>
      typeof key === "string" && /^[A-Za-z_$][\w$]*$/.test(key)
        ? `${i === 0 ? "" : "."}${key}`
        : `[${JSON.stringify(String(key))}]`,
    )
    .join("")

/** The value at `path` in `input`, or the deepest one reached (a queue given as a bare number). */
const valueAt = (input: unknown, path: ReadonlyArray<PropertyKey>) => {
  let value = input
  for (const key of path) {
    if (value === null || typeof value !== "object") return value
    value = (value as Record<PropertyKey, unknown>)[key]
  }
  return value
}

const fromParseError = (
  input: unknown,
  error: ParseResult.ParseError,
  prefix: ReadonlyArray<PropertyKey> = [],
) => {
  const issue = ParseResult.ArrayFormatter.formatErrorSync(error)[0]
  const path = [...prefix, ...(issue?.path ?? [])]
  return new InvalidConfig({
    option: formatPath(path) || "options",
    value: showValue(valueAt(input, issue?.path ?? [])),
    reason: issue?.message ?? String(error),
  })
}

/**
 * The first chain of dead-letter queues (queue → its dead-letter queue) that comes back to a
 * queue it passed, as the queues it went through, the repeated one last; undefined when every
 * chain ends. A cycle would pass a failing job around forever, its attempts reset at every hop.
 */
export const findDeadLetterCycle = (
  deadLetters: ReadonlyMap<string, string | undefined>,
): ReadonlyArray<string> | undefined => {
  for (const start of deadLetters.keys()) {
    const seen = [start]
    for (let next = deadLetters.get(start); next !== undefined; next = deadLetters.get(next)) {
      if (seen.includes(next)) return [...seen, next]
      seen.push(next)
    }
  }
  return undefined
}

/** Dead-letter chains must end: the reason a set of queues is refused, or undefined. */
export const deadLetterCycle = (queues: ReadonlyMap<string, Jobs.QueueConfig<any>>): string | undefined => {
  const cycle = findDeadLetterCycle(
    new Map(Array.from(queues, ([name, config]) => [name, config.deadLetter])),
  )
  // A queue that is its own dead-letter queue is refused before, with its own message.
  return cycle === undefined ? undefined : `dead-letter queues form a cycle: ${cycle.join(" → ")}`
}

const checkHandlers = (
  list: ReadonlyArray<Job.Handler<any>>,
): Either.Either<Map<string, Job.Handler<any>>, InvalidConfig> => {
  const handlers = new Map<string, Job.Handler<any>>()
  for (const handler of list) {
    const def = handler.definition
    const at = (field: string) => `handlers[${JSON.stringify(def.type)}].${field}`
    const bad = (field: string, value: unknown, reason: string) =>
      Either.left(new InvalidConfig({ option: at(field), value: showValue(value), reason }))
    if (handlers.has(def.type)) return bad("type", def.type, "two handlers are registered for this job type")
    if (!queuePattern.test(def.queue)) return bad("queue", def.queue, queueNameRule)
    for (const [field, value, max] of [
      ["priority", def.priority, maxSmallint],
      ["maxAttempts", def.maxAttempts, maxInt],
    ] as const) {
      const min = field === "priority" ? minSmallint : 1
      if (!Number.isInteger(value) || value < min || value > max)
        return bad(field, value, `must be a whole number from ${min} to ${max}`)
    }
    if (Option.isSome(def.timeout) && !Duration.greaterThan(def.timeout.value, Duration.zero)) {
      return bad("timeout", def.timeout.value, "must be longer than zero (leave it out for no timeout)")
    }
    if (!isHookList(def.hooks)) return bad("hooks", def.hooks, hookListRule)
    handlers.set(def.type, handler)
  }
  return Either.right(handlers)
}

/**
 * A node is taken for dead after `nodeTimeout` without a heartbeat. Heartbeats come every
 * `heartbeatInterval`, and one can be late by up to an interval (a slow statement, a pause for
 * garbage collection, a retried write): with less than twice the interval, a live node that is
 * merely late is rescued from and its jobs run twice.
 */
export const minNodeTimeoutFactor = 2

/** Decodes the runtime's options, refusing the first bad one with `InvalidConfig`. */
export const decode = (
  options: Jobs.Options<
    ReadonlyArray<Job.Handler<any>>,
    ReadonlyArray<Task.Task>,
    Readonly<Record<string, number | Jobs.QueueConfig<any>>>
  >,
): Effect.Effect<RuntimeConfig, InvalidConfig> =>
  Effect.gen(function* () {
    const settings = yield* Schema.decodeUnknown(Settings)(options, { errors: "first" }).pipe(
      Effect.mapError((error) => fromParseError(options, error)),
    )
    const queues = new Map(Object.entries(settings.queues) as Array<[string, Jobs.QueueConfig<any>]>)
    for (const [name, queue] of queues) {
      // A Record drops keys its key schema refuses; a queue must never vanish silently.
      if (!queuePattern.test(name)) {
        return yield* new InvalidConfig({
          option: formatPath(["queues", name]),
          value: showValue(name),
          reason: `is not a queue name: ${queueNameRule}`,
        })
      }
      if (queue.deadLetter === name) {
        return yield* new InvalidConfig({
          option: formatPath(["queues", name, "deadLetter"]),
          value: showValue(name),
          reason: "a queue cannot be its own dead-letter queue",
        })
      }
    }
    const cycle = deadLetterCycle(queues)
    if (cycle !== undefined) {
      return yield* new InvalidConfig({ option: "queues", value: showValue(options.queues), reason: cycle })
    }
    const minNodeTimeout = Duration.times(settings.heartbeatInterval, minNodeTimeoutFactor)
    if (Duration.lessThan(settings.nodeTimeout, minNodeTimeout)) {
      return yield* new InvalidConfig({
        option: "nodeTimeout",
        value: showValue(options.nodeTimeout ?? settings.nodeTimeout),
        reason: `must be at least ${minNodeTimeoutFactor} times heartbeatInterval (${Duration.format(settings.heartbeatInterval)}), that is ${Duration.format(minNodeTimeout)} or more, so that one late heartbeat does not make a live node look dead`,
      })
    }
    const handlers = yield* checkHandlers(options.handlers ?? [])
    return {
      ...settings,
      node: settings.node ?? `${hostname()}-${process.pid}-${randomBytes(3).toString("hex")}`,
      queues,
      handlers,
      schedules: options.schedules ?? [],
      tasks: options.tasks ?? [],
    }
  })

/** A queue started at run time: the same rules, refused with `InvalidJobOptions`. */
export const decodeQueue = (
  name: string,
  config: number | Jobs.QueueConfig,
): Effect.Effect<Jobs.QueueConfig, InvalidJobOptions> =>
  Schema.decodeUnknown(Schema.Struct({ name: QueueName, config: QueueEntry }))(
    { name, config },
    { errors: "first" },
  ).pipe(
    Effect.mapError((error) => {
      const invalid = fromParseError({ name, config }, error)
      return new InvalidJobOptions({ message: `queue "${name}": ${invalid.message}` })
    }),
    Effect.flatMap(({ config }) =>
      config.deadLetter === name
        ? Effect.fail(
            new InvalidJobOptions({ message: `queue "${name}" cannot be its own dead-letter queue` }),
          )
        : Effect.succeed(config as Jobs.QueueConfig),
    ),
  )

/**
 * The settings in which two decoded queue configs differ, as text for an error message:
 * durations compare by length, an absent setting as its default.
 */
export const queueDifferences = (
  a: Jobs.QueueConfig<any>,
  b: Jobs.QueueConfig<any>,
): ReadonlyArray<string> => {
  const millis = (d: Duration.DurationInput | undefined) => (d === undefined ? null : Duration.toMillis(d))
  const shown = (config: Jobs.QueueConfig<any>) => ({
    concurrency: config.concurrency,
    paused: config.paused ?? false,
    pollInterval: millis(config.pollInterval),
    globalLimit: config.globalLimit ?? null,
    rateLimit: config.rateLimit
      ? { limit: config.rateLimit.limit, periodMillis: millis(config.rateLimit.period) }
      : null,
    deadLetter: config.deadLetter ?? null,
  })
  const [before, after] = [shown(a), shown(b)]
  return (Object.keys(before) as Array<keyof typeof before>).flatMap((key) =>
    JSON.stringify(before[key]) === JSON.stringify(after[key])
      ? []
      : [`${key} is ${JSON.stringify(before[key])}, asked ${JSON.stringify(after[key])}`],
  )
}

/**
 * `EFFECT_JOBS_QUEUES`: `name:concurrency` pairs separated by commas, such as
 * `default:10,mail:5`. A pair that does not parse is kept as text, so that decoding names it.
 */
export const parseQueues = (text: string): Record<string, unknown> => {
  const queues: Record<string, unknown> = {}
  for (const pair of text.split(",")) {
    if (pair.trim() === "") continue
    const at = pair.lastIndexOf(":")
    const name = (at < 0 ? pair : pair.slice(0, at)).trim()
    const value = at < 0 ? "" : pair.slice(at + 1).trim()
    queues[name] = /^\d+$/.test(value) ? Number(value) : value
  }
  return queues
}

/** A number read from text when it reads as one; otherwise the text, which decoding then refuses by name. */
const numeric = (text: string): unknown => (/^\s*-?\d+(\.\d+)?\s*$/.test(text) ? Number(text) : text)

/** The environment variables `Jobs.layerConfig()` reads, by option. */
export const envNames = {
  schema: "EFFECT_JOBS_SCHEMA",
  node: "EFFECT_JOBS_NODE",
  queues: "EFFECT_JOBS_QUEUES",
  pollInterval: "EFFECT_JOBS_POLL_INTERVAL",
  stageInterval: "EFFECT_JOBS_STAGE_INTERVAL",
  shutdownTimeout: "EFFECT_JOBS_SHUTDOWN_TIMEOUT",
  heartbeatInterval: "EFFECT_JOBS_HEARTBEAT_INTERVAL",
  nodeTimeout: "EFFECT_JOBS_NODE_TIMEOUT",
  pingInterval: "EFFECT_JOBS_PING_INTERVAL",
  maxPayloadBytes: "EFFECT_JOBS_MAX_PAYLOAD_BYTES",
  completionBatchSize: "EFFECT_JOBS_COMPLETION_BATCH_SIZE",
  eventsCapacity: "EFFECT_JOBS_EVENTS_CAPACITY",
} as const

const readers: { readonly [K in keyof typeof envNames]: (text: string) => unknown } = {
  schema: (text) => text,
  node: (text) => text,
  queues: parseQueues,
  pollInterval: (text) => text,
  stageInterval: (text) => text,
  shutdownTimeout: (text) => text,
  heartbeatInterval: (text) => text,
  nodeTimeout: (text) => text,
  pingInterval: (text) => text,
  maxPayloadBytes: numeric,
  completionBatchSize: numeric,
  eventsCapacity: numeric,
}

/**
 * The settings found in the config provider (the environment by default), undecoded: a
 * variable that is not set leaves its option out. Decoding happens with the rest of the options.
 */
export const fromEnv: Config.Config<Record<string, unknown>> = Config.map(
  Config.all(
    Object.fromEntries(
      Object.entries(envNames).map(([option, name]) => [option, Config.option(Config.string(name))]),
    ) as Record<string, Config.Config<Option.Option<string>>>,
  ),
  (found) => {
    const options: Record<string, unknown> = {}
    for (const [option, value] of Object.entries(found)) {
      if (Option.isSome(value)) options[option] = readers[option as keyof typeof envNames](value.value)
    }
    return options
  },
)

/** A `Config` that could not be read, as the one configuration error. */
export const fromConfigError = (error: ConfigError.ConfigError): InvalidConfig => {
  let leaf: ConfigError.ConfigError = error
  while (leaf._op === "And" || leaf._op === "Or") leaf = leaf.left
  const path = "path" in leaf ? leaf.path : []
  return new InvalidConfig({
    option: path.join(".") || "config",
    value: leaf._op === "MissingData" ? "missing" : "unreadable",
    reason: leaf.message,
  })
}

/**
 * Options read from `config`, or from the environment (`envNames`) when none is given; options
 * the config leaves unset are left out, so the options given in code apply to them.
 */
export const read = (
  config: Config.Config<object> | undefined,
): Effect.Effect<Record<string, unknown>, InvalidConfig> =>
  Effect.map(Effect.mapError(config ?? fromEnv, fromConfigError), (found) =>
    Object.fromEntries(Object.entries(found).filter(([, value]) => value !== undefined)),
  )
