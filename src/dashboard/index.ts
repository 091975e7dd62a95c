/**
 * The dashboard: every job, queue, schedule and task of a database in a browser, with the
 * actions an operator needs. Server-rendered HTML, one small script and one style sheet shipped
 * in the package: no build step, no CDN, works offline.
 *
 * It reads and acts through the producer-only `JobsClient`, so the process serving it never
 * joins the cluster, and holds one LISTEN subscription for its live pages.
 *
 * Mount it into an app's own `@effect/platform` router:
 *
 * ```ts
 * const app = Effect.map(Dashboard.router({ prefix: "/admin/jobs", access }), (dashboard) =>
 *   HttpRouter.concat(appRouter, dashboard))
 * ```
 *
 * or serve it alone with `Dashboard.layer({ port: 4000 })`.
 */
import { createServer } from "node:http"
import * as HttpServer from "@effect/platform/HttpServer"
import type { ServeError } from "@effect/platform/HttpServerError"
import * as NodeHttpServer from "@effect/platform-node/NodeHttpServer"
import { Effect, Layer } from "effect"
import type { JobsClient } from "../JobsClient.js"
import type { Listener } from "../Listener.js"
import type { Schedules } from "../Schedules.js"
import type { Options } from "./options.js"
import { router } from "./server.js"

export type { Access, Action, AuditEvent, Field, Options } from "./options.js"
export { actions } from "./options.js"
export { router }

export interface StandaloneOptions extends Options {
  /** Defaults to 4000. */
  readonly port?: number | undefined
  /** The address to listen on. Defaults to `"127.0.0.1"`: reachable from this machine only. */
  readonly host?: string | undefined
}

/**
 * Serves the dashboard alone, on its own HTTP server, for the lifetime of the layer. Give it
 * `JobsClient.layer()` and an engine layer (`JobsPg.layer`, which provides the `Listener`).
 */
export const layer = (
  options: StandaloneOptions = {},
): Layer.Layer<never, ServeError, JobsClient | Schedules | Listener> =>
  Layer.unwrapScoped(Effect.map(router(options), (routes) => HttpServer.serve(routes))).pipe(
    Layer.provide(
      NodeHttpServer.layer(createServer, { port: options.port ?? 4000, host: options.host ?? "127.0.0.1" }),
    ),
  )
