/**
 * A worker node with real jobs, and the dashboard served beside it on an ephemeral port
 * through its own producer-only client, as an operator would run them.
 */
import { createServer } from "node:http"
import * as HttpServer from "@effect/platform/HttpServer"
import * as NodeHttpServer from "@effect/platform-node/NodeHttpServer"
import { SqlClient } from "@effect/sql/SqlClient"
import { Context, Effect, Layer, type Scope } from "effect"
import * as Dashboard from "../../src/dashboard/index.js"
import type * as Job from "../../src/Job.js"
import type * as Jobs from "../../src/Jobs.js"
import * as JobsClient from "../../src/JobsClient.js"
import { Listener } from "../../src/Listener.js"
import type * as Schedules from "../../src/Schedules.js"
import type * as Task from "../../src/Task.js"
import { startJobs } from "../support/jobs.js"

/** Serves `Dashboard.router(options)` on 127.0.0.1 and answers its base URL. */
export const serveDashboard = (options: Dashboard.Options) =>
  Effect.gen(function* () {
    const scope = yield* Effect.scope
    const context = yield* Layer.buildWithScope(
      Layer.unwrapScoped(
        Effect.map(Dashboard.router(options), (routes) =>
          HttpServer.serve(routes.pipe(Effect.tapErrorCause(Effect.logError))),
        ),
      ).pipe(Layer.provideMerge(NodeHttpServer.layer(createServer, { port: 0, host: "127.0.0.1" }))),
      scope,
    )
    const address = Context.get(context, HttpServer.HttpServer).address
    if (address._tag !== "TcpAddress") throw new Error("expected a TCP address")
    return `http://127.0.0.1:${address.port}${options.prefix ?? ""}`
  })

/**
 * A worker running `options` in a schema of its own, and a dashboard on a client of that
 * schema (sharing the test's `SqlClient` and `Listener`).
 */
export const startWorkerAndDashboard = <
  const H extends ReadonlyArray<Job.Handler<any>>,
  const T extends ReadonlyArray<Task.Task> = readonly [],
>(
  options: Jobs.Options<H, T>,
  dashboard: Omit<Dashboard.Options, "schema">,
): Effect.Effect<
  {
    readonly jobs: Jobs.Jobs["Type"]
    readonly schedules: Schedules.Schedules["Type"]
    readonly url: string
    readonly client: JobsClient.JobsClient["Type"]
  },
  unknown,
  SqlClient | Listener | Scope.Scope
> =>
  Effect.gen(function* () {
    const jobs = yield* startJobs(options as Jobs.Options) as Effect.Effect<
      Jobs.Jobs["Type"] & { readonly schema: string; readonly schedules: Schedules.Schedules["Type"] },
      unknown,
      SqlClient | Listener | Scope.Scope
    >
    const sql = yield* SqlClient
    const listener = yield* Listener
    const clientContext = yield* Layer.build(
      JobsClient.layer({ schema: jobs.schema }).pipe(Layer.provide(Layer.succeed(SqlClient, sql))),
    )
    const url = yield* serveDashboard({ ...dashboard, schema: jobs.schema }).pipe(
      Effect.provide(clientContext),
      Effect.provideService(Listener, listener),
    )
    return { jobs, schedules: jobs.schedules, url, client: Context.get(clientContext, JobsClient.JobsClient) }
  })
