/**
 * The dashboard's routes on `@effect/platform`'s router. Every request passes the same gate:
 * basic auth when configured, the app's access hook, a CSRF cookie; every answer carries a
 * strict Content-Security-Policy. State changes are POSTs that must come from the dashboard's
 * own origin with the token of its forms.
 */
import { randomBytes, timingSafeEqual } from "node:crypto"
import { fileURLToPath } from "node:url"
import { FileSystem } from "@effect/platform/FileSystem"
import * as HttpRouter from "@effect/platform/HttpRouter"
import { HttpServerRequest } from "@effect/platform/HttpServerRequest"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import { Clock, Effect, type Scope } from "effect"
import { signalChannel } from "../internal/store/migrations.js"
import { JobsClient } from "../JobsClient.js"
import { Listener } from "../Listener.js"
import { Schedules } from "../Schedules.js"
import * as Actions from "./actions.js"
import type { Sources } from "./data.js"
import { type Html, html, text as htmlText } from "./html.js"
import { can, layout, type View } from "./layout.js"
import * as Live from "./live.js"
import { type Access, type Action, type AuditEvent, actions, type Options } from "./options.js"
import { jobPage, jobsPage } from "./pages/jobs.js"
import { queuesPage, schedulesPage, tasksPage } from "./pages/operations.js"
import { overview } from "./pages/overview.js"

const csp =
  "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
  "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

const securityHeaders = {
  "content-security-policy": csp,
  "x-content-type-options": "nosniff",
  "x-frame-options": "DENY",
  "referrer-policy": "same-origin",
  "cache-control": "no-store",
}

const csrfCookie = "effect_jobs_csrf"

const sameText = (a: string, b: string) => {
  const left = Buffer.from(a)
  const right = Buffer.from(b)
  return left.length === right.length && timingSafeEqual(left, right)
}

const normalizePrefix = (prefix: string | undefined) => (prefix ?? "").replace(/\/+$/, "")

const toAccess = (answer: Access | Access["level"]): Access =>
  typeof answer === "string" ? { level: answer } : answer

/** Whether the request's `Origin` (or, lacking one, `Referer`) is the host it was sent to. */
const sameOrigin = (request: HttpServerRequest) => {
  const host = request.headers["x-forwarded-host"] ?? request.headers.host
  const source = request.headers.origin ?? request.headers.referer
  if (host === undefined || source === undefined || source === "null") return false
  try {
    return new URL(source).host === host
  } catch {
    return false
  }
}

const basicAuthorized = (request: HttpServerRequest, expected: NonNullable<Options["basicAuth"]>) => {
  const header = request.headers.authorization ?? ""
  if (!header.startsWith("Basic ")) return false
  const given = Buffer.from(header.slice(6), "base64").toString("utf8")
  return sameText(given, `${expected.username}:${expected.password}`)
}

const page = (status: number, body: Html) =>
  HttpServerResponse.html(htmlText(body)).pipe(
    HttpServerResponse.setStatus(status),
    HttpServerResponse.setHeaders(securityHeaders),
  )

const plainPage = (status: number, title: string, message: string) =>
  page(
    status,
    html`<!doctype html><html lang="en"><head><meta charset="utf-8"><title>${title}</title></head><body><h1>${title}</h1><p>${message}</p></body></html>`,
  )

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
    const fs = yield* FileSystem
    const asset = (name: string) =>
      fs.readFile(fileURLToPath(new URL(`./assets/${name}`, import.meta.url))).pipe(Effect.orDie)
    const [script, style] = yield* Effect.all([asset("app.js"), asset("app.css")])
    const pageSize = options.pageSize ?? 50
    const redact = options.redact ?? ((value: unknown) => value)
    const audit = options.audit ?? ((event: AuditEvent) => Effect.logInfo("dashboard action", event))

    /** Authenticates and authorizes, then answers with the page; sets the CSRF cookie when missing. */
    const gate = (
      render: (
        view: View,
        request: HttpServerRequest,
      ) => Effect.Effect<HttpServerResponse.HttpServerResponse, unknown, HttpRouter.RouteContext>,
    ) =>
      Effect.gen(function* () {
        const request = yield* HttpServerRequest
        if (options.basicAuth !== undefined && !basicAuthorized(request, options.basicAuth)) {
          return plainPage(401, "Sign in", "This dashboard needs a user name and password.").pipe(
            HttpServerResponse.setHeader("www-authenticate", 'Basic realm="effect-jobs", charset="UTF-8"'),
          )
        }
        const access = toAccess(options.access === undefined ? "full" : yield* options.access(request))
        if (access.level === "forbidden")
          return plainPage(403, "Forbidden", "You may not see this dashboard.")
        const existing = request.cookies[csrfCookie]
        const csrf =
          existing !== undefined && /^[0-9a-f]{64}$/.test(existing)
            ? existing
            : randomBytes(32).toString("hex")
        const url = new URL(request.url, "http://localhost")
        const view: View = {
          prefix,
          access,
          csrf,
          now: yield* Clock.currentTimeMillis,
          here: url.pathname + url.search,
          query: url.searchParams,
        }
        const response = yield* render(view, request).pipe(
          Effect.catchAll((error) => Effect.succeed(failure(view, error))),
        )
        return csrf === existing
          ? response
          : HttpServerResponse.unsafeSetCookie(response, csrfCookie, csrf, {
              path: prefix === "" ? "/" : prefix,
              httpOnly: true,
              sameSite: "strict",
            })
      })

    const failure = (view: View, error: unknown) => {
      const tag = (error as { _tag?: string })._tag
      const message = error instanceof Error ? error.message : String(error)
      const status = tag === "JobNotFound" || tag === "ScheduleNotFound" ? 404 : 500
      return page(
        status,
        layout(
          view,
          "Problem",
          "",
          html`<h1>${status === 404 ? "Not found" : "Problem"}</h1><p class="error-text">${message}</p>`,
        ),
      )
    }

    const view = (render: (view: View) => Effect.Effect<Html, unknown, HttpRouter.RouteContext>) =>
      gate((view) => Effect.map(render(view), (body) => page(200, body)))

    const back = (target: string | undefined, fallback: string) =>
      target !== undefined &&
      (target === prefix || target.startsWith(`${prefix}/`)) &&
      !target.startsWith("//")
        ? target
        : fallback

    const withNotice = (location: string, key: "notice" | "problem", text: string) => {
      const url = new URL(location, "http://localhost")
      url.searchParams.delete("notice")
      url.searchParams.delete("problem")
      url.searchParams.set(key, text)
      return url.pathname + url.search
    }

    const act = gate((view, request) =>
      Effect.gen(function* () {
        const requested = (yield* HttpRouter.params).action ?? ""
        const bulk = requested === "jobs.bulk"
        if (!bulk && !actions.includes(requested as Action))
          return plainPage(404, "Not found", "No such action.")
        const params = yield* request.urlParamsBody.pipe(Effect.orElseSucceed(() => []))
        const form: Record<string, string> = {}
        for (const [key, value] of params) if (!(key in form)) form[key] = value
        const token = request.cookies[csrfCookie]
        if (
          !sameOrigin(request) ||
          token === undefined ||
          form._csrf === undefined ||
          !sameText(token, form._csrf)
        ) {
          return plainPage(403, "Refused", "This request did not come from the dashboard's own pages.")
        }
        // A bulk action needs the right of the single action it repeats.
        const name: Action = bulk ? `job.${Actions.bulkVerb(form) ?? "retry"}` : (requested as Action)
        const user = view.access.user ?? null
        if (!can(view, name)) {
          yield* audit({
            at: new Date(view.now),
            user,
            action: name,
            target: form.id ?? form.queue ?? form.name ?? "",
            outcome: "failed",
            error: "not allowed",
          })
          return plainPage(403, "Forbidden", "You may not do this.")
        }
        const home = back(form.back, `${prefix}/`)
        const ids = params.filter(([key]) => key === "id").map(([, value]) => value)
        const outcome = yield* Effect.either(
          bulk ? Actions.runBulk(sources, form, ids) : Actions.run(sources, name, form, prefix),
        )
        if (outcome._tag === "Right") {
          yield* audit({
            at: new Date(view.now),
            user,
            action: name,
            target: outcome.right.target,
            outcome: "done",
          })
          return HttpServerResponse.redirect(
            withNotice(outcome.right.location ?? home, "notice", outcome.right.notice),
            { status: 303, headers: securityHeaders },
          )
        }
        const error = outcome.left as { message?: string; target?: string }
        const message = error.message ?? String(outcome.left)
        yield* audit({
          at: new Date(view.now),
          user,
          action: name,
          target: error.target ?? form.id ?? form.queue ?? form.name ?? "",
          outcome: "failed",
          error: message,
        })
        return HttpServerResponse.redirect(withNotice(home, "problem", message), {
          status: 303,
          headers: securityHeaders,
        })
      }),
    )

    const assetResponse = (body: Uint8Array, contentType: string) =>
      gate(() =>
        Effect.succeed(
          HttpServerResponse.uint8Array(body, { contentType }).pipe(
            HttpServerResponse.setHeaders({ ...securityHeaders, "cache-control": "public, max-age=300" }),
          ),
        ),
      )

    const events = gate(() =>
      Effect.succeed(
        HttpServerResponse.stream(live.events, { contentType: "text/event-stream" }).pipe(
          HttpServerResponse.setHeaders({ ...securityHeaders, "x-accel-buffering": "no" }),
        ),
      ),
    )

    const jobDetail = view((view) =>
      Effect.flatMap(HttpRouter.params, ({ id }) => {
        const number = Number(id)
        if (!Number.isSafeInteger(number) || number <= 0) return Effect.fail(new Error(`not a job id: ${id}`))
        return Effect.map(sources.client.get(number), (job) => jobPage(view, job, redact))
      }),
    )

    const at = (path: string) => `${prefix}${path}` as HttpRouter.PathInput
    const home = view((view) => overview(sources, view))
    // The router takes `/prefix` and `/prefix/` for one path.
    return HttpRouter.empty.pipe(
      HttpRouter.get(at("/"), home),
      HttpRouter.get(
        at("/jobs"),
        view((view) => jobsPage(sources, view, pageSize)),
      ),
      HttpRouter.get(at("/jobs/:id"), jobDetail),
      HttpRouter.get(
        at("/queues"),
        view((view) => queuesPage(sources, view)),
      ),
      HttpRouter.get(
        at("/schedules"),
        view((view) => schedulesPage(sources, view)),
      ),
      HttpRouter.get(
        at("/tasks"),
        view((view) => tasksPage(sources, view)),
      ),
      HttpRouter.get(at("/events"), events),
      HttpRouter.get(at("/assets/app.js"), assetResponse(script, "text/javascript; charset=utf-8")),
      HttpRouter.get(at("/assets/app.css"), assetResponse(style, "text/css; charset=utf-8")),
      HttpRouter.post(at("/actions/:action"), act),
    )
  })
