/**
 * The dashboard's HTTP surface without a browser: the headers every answer carries, basic
 * auth, access levels, the CSRF gate, and the escaping every page goes through.
 */

import { SqlClient } from "@effect/sql/SqlClient"
import { describe, expect, it, layer } from "@effect/vitest"
import { Effect, Schema } from "effect"
import { escapeText, html, text } from "../../src/dashboard/html.js"
import type { AuditEvent } from "../../src/dashboard/options.js"
import * as Maintenance from "../../src/internal/maintenance/rounds.js"
import * as Store from "../../src/internal/store/store.js"
import * as Job from "../../src/Job.js"
import * as Schedules from "../../src/Schedules.js"
import * as Task from "../../src/Task.js"
import { engines } from "../support/engines.js"
import { eventually, NotYet } from "../support/jobs.js"
import { startWorkerAndDashboard } from "./support.js"

const Echo = Job.make("echo", { args: Schema.Struct({ text: Schema.String }) })

const request = (url: string, init: RequestInit = {}) =>
  Effect.promise(async () => {
    const response = await fetch(url, { redirect: "manual", ...init })
    return { status: response.status, headers: response.headers, body: await response.text() }
  })

describe("escaping", () => {
  it("escapes every character that could open markup or leave an attribute", () => {
    expect(escapeText(`<script>"x"='y'&\``)).toBe("&lt;script&gt;&quot;x&quot;=&#39;y&#39;&amp;&#96;")
  })

  it("escapes interpolated values but not nested templates", () => {
    const inner = html`<b>${"<i>"}</b>`
    expect(text(html`<p title="${'"onmouseover="x'}">${inner}${["<", null, false, 1]}</p>`)).toBe(
      '<p title="&quot;onmouseover=&quot;x"><b>&lt;i&gt;</b>&lt;1</p>',
    )
  })
})

layer(engines[0]!.layer, { timeout: "3 minutes", excludeTestServices: true })("dashboard over HTTP", (it) => {
  it.scoped("answers every page with a strict Content-Security-Policy and sets the CSRF cookie", () =>
    Effect.gen(function* () {
      const { url, jobs } = yield* startWorkerAndDashboard(
        { handlers: [Echo.handler(() => Effect.void)] },
        {},
      )
      yield* jobs.insert(Echo, { text: "hi" })
      for (const path of ["/", "/jobs", "/queues", "/schedules", "/tasks", "/jobs/1"]) {
        const page = yield* request(`${url}${path}`)
        expect(page.status, path).toBe(200)
        expect(page.headers.get("content-security-policy")).toContain("default-src 'none'; script-src 'self'")
        expect(page.headers.get("x-frame-options")).toBe("DENY")
        expect(page.headers.get("set-cookie")).toMatch(
          /^effect_jobs_csrf=[0-9a-f]{64}; .*HttpOnly; .*SameSite=Strict/,
        )
      }
      expect((yield* request(`${url}/jobs/999999`)).status).toBe(404)
      expect((yield* request(`${url}/assets/app.js`)).body).toContain("EventSource")
    }),
  )

  it.scoped("asks for basic auth when configured, and refuses a wrong password", () =>
    Effect.gen(function* () {
      const { url } = yield* startWorkerAndDashboard({}, { basicAuth: { username: "ops", password: "pw" } })
      const anonymous = yield* request(`${url}/`)
      expect(anonymous.status).toBe(401)
      expect(anonymous.headers.get("www-authenticate")).toContain("Basic")
      const wrong = `Basic ${Buffer.from("ops:nope").toString("base64")}`
      expect((yield* request(`${url}/`, { headers: { authorization: wrong } })).status).toBe(401)
      const right = `Basic ${Buffer.from("ops:pw").toString("base64")}`
      expect((yield* request(`${url}/`, { headers: { authorization: right } })).status).toBe(200)
    }),
  )

  it.scoped("runs a task now, pauses and resumes it, and runs a schedule now, each audited", () =>
    Effect.gen(function* () {
      const counter = Task.make({
        id: "counter",
        every: "1 hour",
        state: Schema.Number,
        initial: 0,
        run: (n) => Effect.succeed(n + 1),
      })
      const audited: Array<AuditEvent> = []
      const { url, client } = yield* startWorkerAndDashboard(
        {
          handlers: [Echo.handler(() => Effect.void)],
          tasks: [counter],
          schedules: [Schedules.cron("nightly", "0 3 * * *", Echo, { text: "night" })],
        },
        { audit: (event) => Effect.sync(() => audited.push(event)) },
      )
      const page = yield* request(`${url}/tasks`)
      expect(page.body).toContain(`data-action="task.runNow"`)
      expect(page.body).toContain(`data-action="task.pause"`)
      const cookie = page.headers.get("set-cookie")!.split(";")[0]!
      const post = (action: string, body: Record<string, string>) =>
        request(`${url}/actions/${action}`, {
          method: "POST",
          headers: {
            "content-type": "application/x-www-form-urlencoded",
            cookie,
            origin: new URL(url).origin,
          },
          body: new URLSearchParams({ _csrf: cookie.split("=")[1]!, back: "/tasks", ...body }).toString(),
        })
      const notice = (response: { headers: Headers }) =>
        new URL(response.headers.get("location")!, url).searchParams.get("notice")

      expect(notice(yield* post("task.pause", { task: "counter" }))).toBe(
        "Task counter is paused on every node.",
      )
      expect((yield* client.taskStats())[0]!.paused).toBe(true)
      expect((yield* request(`${url}/tasks`)).body).toContain(`data-action="task.resume"`)
      expect(notice(yield* post("task.runNow", { task: "counter" }))).toMatch(
        /^A run of task counter is requested: it starts now on /,
      )
      yield* eventually(
        Effect.flatMap(client.taskHistory("counter"), (runs) =>
          runs.length === 1 && runs[0]!.trigger === "manual" ? Effect.void : Effect.fail(new NotYet()),
        ),
      )
      yield* post("task.resume", { task: "counter" })
      expect((yield* client.taskStats())[0]!.paused).toBe(false)
      const unknown = yield* post("task.runNow", { task: "nope" })
      expect(new URL(unknown.headers.get("location")!, url).searchParams.get("problem")).toContain("nope")

      const ran = yield* post("schedule.runNow", { name: "nightly" })
      const jobId = Number(ran.headers.get("location")!.match(/\/jobs\/(\d+)/)![1])
      expect((yield* client.get(jobId)).meta).toMatchObject({ schedule: "nightly", manual: true })

      expect(audited.map((e) => [e.action, e.target, e.outcome])).toEqual([
        ["task.pause", "task counter", "done"],
        ["task.runNow", "task counter", "done"],
        ["task.resume", "task counter", "done"],
        ["task.runNow", "nope", "failed"],
        ["schedule.runNow", "schedule nightly", "done"],
      ])
    }),
  )

  it.scoped("refuses a POST without the same origin or the form's token, and changes nothing", () =>
    Effect.gen(function* () {
      const { url, jobs } = yield* startWorkerAndDashboard({}, {})
      const job = yield* jobs.insert(Echo, { text: "stay" }, { scheduleIn: "1 hour" })
      const page = yield* request(`${url}/jobs/${job.id}`)
      const cookie = page.headers.get("set-cookie")!.split(";")[0]!
      const token = cookie.split("=")[1]!
      const post = (headers: Record<string, string>, body: Record<string, string>) =>
        request(`${url}/actions/job.cancel`, {
          method: "POST",
          headers: { "content-type": "application/x-www-form-urlencoded", ...headers },
          body: new URLSearchParams(body).toString(),
        })
      const origin = new URL(url).origin
      expect(
        (yield* post({ cookie, origin: "http://evil.example" }, { _csrf: token, id: String(job.id) })).status,
      ).toBe(403)
      expect((yield* post({ cookie }, { _csrf: token, id: String(job.id) })).status).toBe(403)
      expect((yield* post({ cookie, origin }, { _csrf: "0".repeat(64), id: String(job.id) })).status).toBe(
        403,
      )
      expect((yield* jobs.get(job.id)).state).toBe("scheduled")
      const accepted = yield* post(
        { cookie, origin },
        { _csrf: token, id: String(job.id), back: "//evil.example/" },
      )
      expect(accepted.status).toBe(303)
      expect(accepted.headers.get("location")).toMatch(/^\/\?notice=/)
      expect((yield* jobs.get(job.id)).state).toBe("cancelled")
    }),
  )

  it.scoped("draws throughput and latency over a day and a month from the leader's aggregates", () =>
    Effect.gen(function* () {
      const { url, jobs } = yield* startWorkerAndDashboard({}, {})
      const schema = (jobs as unknown as { schema: string }).schema
      const sql = yield* SqlClient
      // Jobs that finished ten minutes ago, aggregated afresh (the leader's first round ran at start).
      yield* sql.unsafe(
        `INSERT INTO ${schema}.jobs (queue, type, state, scheduled_at, attempted_at, completed_at, discarded_at, attempt)
         SELECT 'q', 'report', s, t - interval '2 seconds', t - interval '1 second',
           CASE WHEN s = 'completed' THEN t END, CASE WHEN s = 'discarded' THEN t END, 1
         FROM (SELECT now() - interval '10 minutes' AS t) x,
           unnest(ARRAY['completed', 'completed', 'completed', 'discarded']) AS s`,
      )
      yield* sql.unsafe(`DELETE FROM ${schema}.job_stats`)
      yield* Maintenance.aggregateStats(Store.make(sql, schema))
      const day = (yield* request(`${url}/`)).body
      expect(day).toContain('aria-label="Jobs finished per minute')
      expect(day).toContain('aria-label="Queue wait"')
      expect(day).toContain('aria-label="Run time"')
      expect(day).not.toContain("(nothing finished)")
      // 288 points of five minutes: the line of completions is drawn through all of them.
      const completed = /<path class="line series-completed" d="([^"]*)"/.exec(day)![1]!
      expect(completed.split("L").length).toBe(288)
      // The run time of a second is on the chart: a p50 line with points, an axis labelled in time.
      expect(/<path class="line series-p50" d="M[^"]+"/.test(day)).toBe(true)
      expect(day).toMatch(/>1s<\/text>/)
      const month = (yield* request(`${url}/?window=month`)).body
      expect(month).toContain('aria-current="page">Last 30 days')
      expect(/<path class="line series-completed" d="([^"]*)"/.exec(month)![1]!.split("L").length).toBe(720)
    }),
  )
})
