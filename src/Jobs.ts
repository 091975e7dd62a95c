/**
 * The jobs runtime as one service: insert and manage jobs, run queues on this node, watch
 * what happens. Compose it with an engine layer (`JobsPg.layer` or `JobsPglite.layer`).
 */
import type { SqlClient } from "@effect/sql/SqlClient"
import { Config, Context, Effect, Layer } from "effect"
import type { JobsService, Options, QueueConfig, QueuesContext } from "./internal/api/service.js"
import * as RuntimeConfig from "./internal/config.js"
import * as runtime from "./internal/runtime.js"
import type { RestartPolicy } from "./internal/supervisor.js"
import type * as Job from "./Job.js"
import type {
  DatabaseError,
  InvalidConfig,
  InvalidSchedule,
  InvalidTask,
  NodeNameInUse,
  SchemaTooNew,
  TaskAlreadyRegistered,
  TestClockInUse,
} from "./JobError.js"
import { JobsClient } from "./JobsClient.js"
import type { Listener } from "./Listener.js"
import * as Schedules from "./Schedules.js"
import type * as Task from "./Task.js"
import * as Tasks from "./Tasks.js"

export type {
  ClusterQueue,
  DeleteQueueOptions,
  EnsureResult,
  FailureGroup,
  FailureGroups,
  FailureGroupsOptions,
  InsertError,
  InsertedJob,
  InsertOptions,
  JobsAdmin,
  JobsService,
  ListOptions,
  NodeInfo,
  NodeQueue,
  Options,
  Orphans,
  PauseResult,
  PruneConfig,
  QueueConfig,
  QueueControl,
  QueueInfo,
  QueuePruning,
  QueueStatus,
  QueuesContext,
  QueueTarget,
  RescheduleTo,
  ResumeResult,
  StoredPruning,
  Throughput,
  ThroughputPoint,
  ThroughputWindow,
  VacuumConfig,
} from "./internal/api/service.js"
export type { RestartPolicy }

export class Jobs extends Context.Tag("effect-jobs/Jobs")<Jobs, JobsService>() {}

/** The services the handlers in a list need. */
export type HandlersContext<H extends ReadonlyArray<Job.Handler<any>>> = [H[number]] extends [never]
  ? never
  : H[number] extends Job.Handler<infer R, any>
    ? R
    : never

/** What `layer` and `layerConfig` provide. */
export type Provided = Jobs | JobsClient | Schedules.Schedules | Tasks.Tasks

/** What building `layer` or `layerConfig` can fail with. */
export type LayerError =
  | InvalidConfig
  | NodeNameInUse
  | SchemaTooNew
  | InvalidSchedule
  | InvalidTask
  | TaskAlreadyRegistered
  | TestClockInUse
  | DatabaseError

/**
 * Builds the runtime: migrates the schema, starts the queues and the maintenance fibers,
 * and stops all of it gracefully when the layer's scope closes. Provides `Jobs`, the
 * `Schedules` of cron jobs, this node's `Tasks`, and `JobsClient` (the operations that need no
 * queue, so that code written against the client runs on a worker too).
 */
export const layer = <
  const H extends ReadonlyArray<Job.Handler<any>> = readonly [],
  const T extends ReadonlyArray<Task.Task> = readonly [],
  const Q extends Readonly<Record<string, number | QueueConfig<any>>> = Readonly<
    Record<string, number | QueueConfig>
  >,
>(
  options: Options<H, T, Q> = {},
): Layer.Layer<
  Provided,
  LayerError,
  SqlClient | Listener | HandlersContext<H> | Task.Context<T> | QueuesContext<Q>
> =>
  Layer.scopedContext(
    Effect.map(runtime.make(options), ({ jobs, client, schedules, tasks }) =>
      Context.make(Jobs, jobs).pipe(
        Context.add(JobsClient, client),
        Context.add(Schedules.Schedules, schedules),
        Context.add(Tasks.Tasks, tasks),
      ),
    ),
  )

/** The options `layerConfig` can read from `Config`: all but code (handlers, tasks, schedules, restart policy). */
export type ConfigurableOptions = Omit<Options, "handlers" | "tasks" | "schedules" | "restartPolicy">

/**
 * The environment variables `layerConfig` reads when given no config, by option. Durations are
 * written as `"5 seconds"` or a number of milliseconds; `EFFECT_JOBS_QUEUES` as
 * `name:concurrency` pairs, `default:10,mail:5`.
 */
export const envNames: Readonly<Record<keyof typeof RuntimeConfig.envNames, string>> = RuntimeConfig.envNames

/**
 * `layer`, with options read from `Config`: from the environment variables in `envNames` when
 * no `config` is given (variables that are not set leave the option to `options` or its
 * default), or from `config`, such as `{ queues: Config.succeed({ default: 5 }), node:
 * Config.string("HOSTNAME") }`. What the config sets overrides `options`. A value that cannot be
 * read or is refused fails with `InvalidConfig`, naming the option and the value.
 */
export const layerConfig = <
  const H extends ReadonlyArray<Job.Handler<any>> = readonly [],
  const T extends ReadonlyArray<Task.Task> = readonly [],
  const Q extends Readonly<Record<string, number | QueueConfig<any>>> = Readonly<
    Record<string, number | QueueConfig>
  >,
>(
  options: Options<H, T, Q> = {},
  config?: Config.Config.Wrap<ConfigurableOptions>,
): Layer.Layer<
  Provided,
  LayerError,
  SqlClient | Listener | HandlersContext<H> | Task.Context<T> | QueuesContext<Q>
> =>
  Layer.unwrapEffect(
    Effect.map(RuntimeConfig.read(config === undefined ? undefined : Config.unwrap(config)), (read) =>
      layer<H, T, Q>({ ...options, ...read } as Options<H, T, Q>),
    ),
  )
