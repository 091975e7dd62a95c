/**
 * The gate every dashboard request passes: basic auth when configured, the app's access hook, a
 * CSRF cookie; every answer carries a strict Content-Security-Policy. A POST must also come from
 * the dashboard's own origin with the token of its forms.
 */
import { randomBytes, timingSafeEqual } from "node:crypto"
import type * as HttpRouter from "@effect/platform/HttpRouter"
import { HttpServerRequest } from "@effect/platform/HttpServerRequest"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import { Clock, Effect, Schema } from "effect"
import { type Html, html, text as htmlText } from "./html.js"
import { layout, type View } from "./layout.js"
import type { Access, Options } from "./options.js"

const csp =
  "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
  "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

export const securityHeaders = {
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

/** Whether a form was posted from the dashboard's own pages: same origin, and its CSRF token. */
export const fromDashboard = (request: HttpServerRequest, form: Readonly<Record<string, string>>) => {
  const token = request.cookies[csrfCookie]
  return sameOrigin(request) && token !== undefined && form._csrf !== undefined && sameText(token, form._csrf)
}

const basicAuthorized = (request: HttpServerRequest, expected: NonNullable<Options["basicAuth"]>) => {
  const header = request.headers.authorization ?? ""
  if (!header.startsWith("Basic ")) return false
  const given = Buffer.from(header.slice(6), "base64").toString("utf8")
  return sameText(given, `${expected.username}:${expected.password}`)
}

export const page = (status: number, body: Html) =>
  HttpServerResponse.html(htmlText(body)).pipe(
    HttpServerResponse.setStatus(status),
    HttpServerResponse.setHeaders(securityHeaders),
  )

export const plainPage = (status: number, title: string, message: string) =>
  page(
    status,
    html`<!doctype html><html lang="en"><head><meta charset="utf-8"><title>${title}</title></head><body><h1>${title}</h1><p>${message}</p></body></html>`,
  )

/** A page that does not exist (a bulk action's progress that is no longer kept, say). */
export class NotFound extends Schema.TaggedError<NotFound>()("NotFound", { message: Schema.String }) {}

/** A route's error as a page in the dashboard's layout: 404 for a missing job or schedule. */
const failure = (view: View, error: unknown) => {
  const tag = (error as { _tag?: string })._tag
  const message = error instanceof Error ? error.message : String(error)
  const status = tag === "JobNotFound" || tag === "ScheduleNotFound" || tag === "NotFound" ? 404 : 500
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

export type Render = (
  view: View,
  request: HttpServerRequest,
) => Effect.Effect<HttpServerResponse.HttpServerResponse, unknown, HttpRouter.RouteContext>

/**
 * The gate for the dashboard under `prefix`: authenticates and authorizes, then answers with
 * the rendered response; sets the CSRF cookie when missing.
 */
export const makeGate = (options: Options, prefix: string) => (render: Render) =>
  Effect.gen(function* () {
    const request = yield* HttpServerRequest
    if (options.basicAuth !== undefined && !basicAuthorized(request, options.basicAuth)) {
      return plainPage(401, "Sign in", "This dashboard needs a user name and password.").pipe(
        HttpServerResponse.setHeader("www-authenticate", 'Basic realm="effect-jobs", charset="UTF-8"'),
      )
    }
    const access = toAccess(options.access === undefined ? "full" : yield* options.access(request))
    if (access.level === "forbidden") return plainPage(403, "Forbidden", "You may not see this dashboard.")
    const existing = request.cookies[csrfCookie]
    const csrf =
      existing !== undefined && /^[0-9a-f]{64}$/.test(existing) ? existing : randomBytes(32).toString("hex")
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

export type Gate = ReturnType<typeof makeGate>
