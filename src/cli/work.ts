/**
 * `work --module ./dist/jobs.js` runs a worker node from a module of the app, as
 * graphile-worker's `run` does. The module exports `handlers` (an array of `Job.Handler`) and
 * may export `queues` (as `Jobs.layer` takes them), `schedules`, `tasks`, `options` (any other
 * option of `Jobs.layer`) and `layer` (the services its handlers need); or a default export
 * holding the same. SIGTERM and Ctrl-C stop claiming and let running jobs finish
 * (`shutdownTimeout`), then the process exits.
 */
import * as NodePath from "node:path"
import { pathToFileURL } from "node:url"
import { Command, Options } from "@effect/cli"
import { Console, Effect, Layer } from "effect"
import type * as Job from "../Job.js"
import { InvalidCommand } from "../JobError.js"
import * as Jobs from "../Jobs.js"
import * as Global from "./global.js"

interface WorkerModule {
  readonly handlers: ReadonlyArray<Job.Handler<any>>
  readonly queues?: Jobs.Options["queues"]
  readonly schedules?: Jobs.Options["schedules"]
  readonly tasks?: Jobs.Options["tasks"]
  readonly options?: Jobs.Options
  readonly layer?: Layer.Layer<any, any, never>
}

const invalid = (message: string) => new InvalidCommand({ message })

const isHandler = (value: unknown): value is Job.Handler<any> =>
  typeof value === "object" &&
  value !== null &&
  typeof (value as { perform?: unknown }).perform === "function" &&
  typeof (value as { definition?: { type?: unknown } }).definition?.type === "string"

const load = (path: string) =>
  Effect.gen(function* () {
    const url = pathToFileURL(NodePath.resolve(path)).href
    const loaded = yield* Effect.tryPromise({
      try: () => import(url) as Promise<Record<string, unknown>>,
      catch: (error) =>
        invalid(`cannot load ${path}: ${error instanceof Error ? error.message : String(error)}`),
    })
    const exports = (
      loaded.handlers === undefined && typeof loaded.default === "object" && loaded.default !== null
        ? loaded.default
        : loaded
    ) as Partial<WorkerModule>
    if (!Array.isArray(exports.handlers) || !exports.handlers.every(isHandler)) {
      return yield* invalid(
        `${path} must export handlers: an array of Job.Handler (definition.handler(...)), as Jobs.layer takes them`,
      )
    }
    if (exports.layer !== undefined && !Layer.isLayer(exports.layer)) {
      return yield* invalid(`${path} exports a layer that is not an Effect Layer`)
    }
    return exports as WorkerModule
  })

export const command = Command.make(
  "work",
  {
    global: Global.options,
    module: Options.file("module", { exists: "yes" }).pipe(
      Options.withDescription(
        "The module exporting handlers (and queues, schedules, tasks, options, layer).",
      ),
    ),
    connections: Options.integer("connections").pipe(
      Options.withDescription("The size of the PostgreSQL pool."),
      Options.withDefault(10),
    ),
  },
  ({ global, module, connections }) =>
    Effect.gen(function* () {
      const worker = yield* load(module)
      const jobs = Jobs.layer({
        ...worker.options,
        schema: global.schema,
        handlers: worker.handlers,
        ...(worker.queues === undefined ? {} : { queues: worker.queues }),
        ...(worker.schedules === undefined ? {} : { schedules: worker.schedules }),
        ...(worker.tasks === undefined ? {} : { tasks: worker.tasks }),
      })
      const services = worker.layer ?? Layer.empty
      const running = Effect.gen(function* () {
        const node = yield* Jobs.Jobs
        const queues = yield* node.queues
        yield* Console.log(
          `node ${node.node} runs ${queues.map((q) => `${q.name} (${q.limit})`).join(", ") || "no queue"} with handlers for ${worker.handlers.map((h) => h.definition.type).join(", ") || "no job type"}; SIGTERM or Ctrl-C stops it`,
        )
        // Until a signal interrupts this fiber, or the runtime escalates a failure.
        return yield* node.awaitFailure
      })
      // The module's handlers are typed by the module; what they need, its layer provides.
      const worked: Effect.Effect<void, unknown> = running.pipe(
        Effect.provide(
          jobs.pipe(Layer.provide(services), Layer.provide(Global.sqlLayer(global, true, connections))),
        ),
        Effect.onInterrupt(() => Console.log("stopped: running jobs finished or were handed back")),
      ) as unknown as Effect.Effect<void, unknown>
      yield* worked
    }),
).pipe(Command.withDescription("Run a worker node with the handlers and queues a module exports."))
