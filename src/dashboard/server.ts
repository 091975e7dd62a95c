/**
 * The dashboard's routes on `@effect/platform`'s router, each behind the gate of `gate.ts`.
 * State changes are POSTs that must come from the dashboard's own origin with the token of its
 * forms.
 */
import { fileURLToPath } from "node:url"
import { FileSystem } from "@effect/platform/FileSystem"
import * as HttpRouter from "@effect/platform/HttpRouter"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import { Effect, type Scope } from "effect"
import { signalChannel } from "../internal/store/migrations.js"
import { JobsClient } from "../JobsClient.js"
import { Listener } from "../Listener.js"
import { Schedules } from "../Schedules.js"
import * as Actions from "./actions.js"
import * as Bulk from "./bulk.js"
import type { Sources } from "./data.js"
import { fromDashboard, type Gate, makeGate, NotFound, page, plainPage, securityHeaders } from "./gate.js"
import type { Html } from "./html.js"
import { can, type View } from "./layout.js"
import * as Live from "./live.js"
import { type Action, type AuditEvent, actions, type Options } from "./options.js"
import { bulkPage, failuresPage } from "./pages/failures.js"
import { jobPage, jobsPage } from "./pages/jobs.js"
import { queuesPage, schedulesPage, tasksPage } from "./pages/operations.js"
import { overview } from "./pages/overview.js"

/** What every group of routes needs: where it is mounted, what it reads, and the gate. */
interface Mount {
  readonly prefix: string
  readonly sources: Sources
  readonly gate: Gate
  readonly live: Live.Live
  readonly bulk: Bulk.Bulk
}

/** Adds a group of routes to the router. */
type Routes = (router: HttpRouter.HttpRouter) => HttpRouter.HttpRouter

const normalizePrefix = (prefix: string | undefined) => (prefix ?? "").replace(/\/+$/, "")

const at = (mount: Mount, path: string) => `${mount.prefix}${path}` as HttpRouter.PathInput

/** Where to go after an action: the form's own page when it is one of the dashboard's. */
const back = (prefix: string, target: string | undefined, fallback: string) =>
  target !== undefined && (target === prefix || target.startsWith(`${prefix}/`)) && !target.startsWith("//")
    ? target
    : fallback

const withNotice = (location: string, key: "notice" | "problem", text: string) => {
  const url = new URL(location, "http://localhost")
  url.searchParams.delete("notice")
  url.searchParams.delete("problem")
  url.searchParams.set(key, text)
  return url.pathname + url.search
}

const redirectWith = (location: string, key: "notice" | "problem", text: string) =>
  HttpServerResponse.redirect(withNotice(location, key, text), { status: 303, headers: securityHeaders })

/** The read-only pages, each an HTML page behind the gate. */
const pageRoutes = (mount: Mount, options: Options): Routes => {
  const { sources } = mount
  const pageSize = options.pageSize ?? 50
  const redact = options.redact ?? ((value: unknown) => value)
  const view = (render: (view: View) => Effect.Effect<Html, unknown, HttpRouter.RouteContext>) =>
    mount.gate((view) => Effect.map(render(view), (body) => page(200, body)))
  const jobDetail = view((view) =>
    Effect.flatMap(HttpRouter.params, ({ id }) => {
      const number = Number(id)
      if (!Number.isSafeInteger(number) || number <= 0) return Effect.fail(new Error(`not a job id: ${id}`))
      return Effect.map(sources.client.get(number), (job) => jobPage(view, job, redact))
    }),
  )
  // The router takes `/prefix` and `/prefix/` for one path.
  return (router) =>
    router.pipe(
      HttpRouter.get(
        at(mount, "/"),
        view((view) => overview(sources, view)),
      ),
      HttpRouter.get(
        at(mount, "/jobs"),
        view((view) => jobsPage(sources, view, pageSize)),
      ),
      HttpRouter.get(at(mount, "/jobs/:id"), jobDetail),
      HttpRouter.get(
        at(mount, "/queues"),
        view((view) => queuesPage(sources, view)),
      ),
      HttpRouter.get(
        at(mount, "/schedules"),
        view((view) => schedulesPage(sources, view)),
      ),
      HttpRouter.get(
        at(mount, "/tasks"),
        view((view) => tasksPage(sources, view)),
      ),
      HttpRouter.get(
        at(mount, "/failures"),
        view((view) => failuresPage(sources, view)),
      ),
      HttpRouter.get(
        at(mount, "/bulk/:id"),
        view((view) =>
          Effect.flatMap(HttpRouter.params, ({ id }) => {
            const run = mount.bulk.get(id ?? "")
            return run === undefined
              ? Effect.fail(new NotFound({ message: `No bulk action ${id} is kept here.` }))
              : Effect.succeed(bulkPage(view, run))
          }),
        ),
      ),
    )
}

/** The live pages' event stream, fed by the one LISTEN subscription held for the scope. */
const eventsRoute = (mount: Mount): Routes => {
  const events = mount.gate(() =>
    Effect.succeed(
      HttpServerResponse.stream(mount.live.events, { contentType: "text/event-stream" }).pipe(
        HttpServerResponse.setHeaders({ ...securityHeaders, "x-accel-buffering": "no" }),
      ),
    ),
  )
  return (router) => router.pipe(HttpRouter.get(at(mount, "/events"), events))
}

/** The script and the style sheet, read once from the package. */
const assetRoutes = (mount: Mount) =>
  Effect.gen(function* () {
    const fs = yield* FileSystem
    const read = (name: string) =>
      fs.readFile(fileURLToPath(new URL(`./assets/${name}`, import.meta.url))).pipe(Effect.orDie)
    const [script, style] = yield* Effect.all([read("app.js"), read("app.css")])
    const asset = (body: Uint8Array, contentType: string) =>
      mount.gate(() =>
        Effect.succeed(
          HttpServerResponse.uint8Array(body, { contentType }).pipe(
            HttpServerResponse.setHeaders({ ...securityHeaders, "cache-control": "public, max-age=300" }),
          ),
        ),
      )
    return ((router) =>
      router.pipe(
        HttpRouter.get(at(mount, "/assets/app.js"), asset(script, "text/javascript; charset=utf-8")),
        HttpRouter.get(at(mount, "/assets/app.css"), asset(style, "text/css; charset=utf-8")),
      )) satisfies Routes
  })

/**
 * The state changes: a POST naming one action (or `jobs.bulk`), checked for origin, CSRF token
 * and the right to it, run, audited, and answered with a redirect carrying a notice.
 */
const actionRoute = (mount: Mount, options: Options): Routes => {
  const { prefix, sources } = mount
  const audit = options.audit ?? ((event: AuditEvent) => Effect.logInfo("dashboard action", event))
  const act = mount.gate((view, request) =>
    Effect.gen(function* () {
      const requested = (yield* HttpRouter.params).action ?? ""
      const bulk = requested === "jobs.bulk"
      if (!bulk && !actions.includes(requested as Action))
        return plainPage(404, "Not found", "No such action.")
      const params = yield* request.urlParamsBody.pipe(Effect.orElseSucceed(() => []))
      const form: Record<string, string> = {}
      for (const [key, value] of params) if (!(key in form)) form[key] = value
      if (!fromDashboard(request, form)) {
        return plainPage(403, "Refused", "This request did not come from the dashboard's own pages.")
      }
      // A bulk action needs the right of the single action it repeats.
      const name: Action = bulk ? `job.${Actions.bulkVerb(form) ?? "retry"}` : (requested as Action)
      const record = (target: string, error?: string) =>
        audit({
          at: new Date(view.now),
          user: view.access.user ?? null,
          action: name,
          target,
          outcome: error === undefined ? "done" : "failed",
          ...(error === undefined ? {} : { error }),
        })
      const formTarget = form.id ?? form.queue ?? form.name ?? form.task ?? ""
      if (!can(view, name)) {
        yield* record(formTarget, "not allowed")
        return plainPage(403, "Forbidden", "You may not do this.")
      }
      const home = back(prefix, form.back, `${prefix}/`)
      const ids = params.filter(([key]) => key === "id").map(([, value]) => value)
      const onFailure = (run: Bulk.BulkRun, message: string) => record(run.target, message)
      const outcome = yield* Effect.either(
        bulk
          ? Actions.runBulk(sources, { bulk: mount.bulk, prefix, back: home, onFailure }, form, ids)
          : Actions.run(sources, name, form, prefix),
      )
      if (outcome._tag === "Right") {
        yield* record(outcome.right.target)
        return redirectWith(outcome.right.location ?? home, "notice", outcome.right.notice)
      }
      const error = outcome.left as { message?: string; target?: string }
      const message = error.message ?? String(outcome.left)
      yield* record(error.target ?? formTarget, message)
      return redirectWith(home, "problem", message)
    }),
  )
  return (router) => router.pipe(HttpRouter.post(at(mount, "/actions/:action"), act))
}

/**
 * The dashboard's routes, under `options.prefix`: concatenate them with the app's router
 * (`HttpRouter.concat`), or serve them alone with `layer`. Needs the producer-only client, the
 * schedules service and the engine's `Listener` (for its one LISTEN subscription, held for the
 * scope's lifetime).
 */
export const router = (
  options: Options = {},
): Effect.Effect<
  HttpRouter.HttpRouter,
  never,
  JobsClient | Schedules | Listener | FileSystem | Scope.Scope
> =>
  Effect.gen(function* () {
    const prefix = normalizePrefix(options.prefix)
    const sources: Sources = { client: yield* JobsClient, schedules: yield* Schedules }
    const live = yield* Live.make(yield* Listener, signalChannel(options.schema ?? "effect_jobs"))
    const bulk = yield* Bulk.make(live.touch)
    const mount: Mount = { prefix, sources, gate: makeGate(options, prefix), live, bulk }
    const assets = yield* assetRoutes(mount)
    return HttpRouter.empty.pipe(
      pageRoutes(mount, options),
      eventsRoute(mount),
      assets,
      actionRoute(mount, options),
    )
  })
