/**
 * The dashboard in a real browser: Debian's Chromium driven by playwright-core, against a
 * worker node with real jobs on each engine. One browser for the whole file; each engine gets
 * its own database, worker and dashboard.
 */

import * as NodeFs from "node:fs"
import { createServer, type Server } from "node:http"
import { SqlClient } from "@effect/sql/SqlClient"
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from "@effect/vitest"
import { Deferred, Effect, Exit, Layer, Schema, Scope } from "effect"
import { type Browser, type BrowserContext, chromium } from "playwright-core"
import type * as Dashboard from "../../src/dashboard/index.js"
import * as Maintenance from "../../src/internal/maintenance/rounds.js"
import * as Store from "../../src/internal/store/store.js"
import * as Job from "../../src/Job.js"
import type * as Jobs from "../../src/Jobs.js"
import type { JobsClient } from "../../src/JobsClient.js"
import * as Schedules from "../../src/Schedules.js"
import * as Task from "../../src/Task.js"
import { engines } from "../support/engines.js"
import { awaitState } from "../support/jobs.js"
import { startWorkerAndDashboard } from "./support.js"

// A browser test waits on pages, a worker and a database at once: room for a busy machine.
vi.setConfig({ testTimeout: 180_000 })

const chromiumPath = "/usr/bin/chromium"
/** Where screenshots of each page go, when set (the README shows docs/images). */
const screenshots = process.env.DASHBOARD_SCREENSHOTS

const hostile = `<script>window.__xss = 1</script>"onmouseover="window.__xss = 2" x="`

const Echo = Job.make("echo", { args: Schema.Struct({ text: Schema.String }), result: Schema.String })
const Mail = Job.make("mail.send", { args: Schema.Struct({ to: Schema.String }), queue: "mail" })
const Boom = Job.make("boom", { args: Schema.Struct({ reason: Schema.String }), maxAttempts: 1 })
const Hold = Job.make("hold", { args: Schema.Struct({}) })
/** A type nothing handles, whose name is itself hostile markup. */
const Hostile = Job.make(hostile, { args: Schema.Struct({ note: Schema.String }), queue: "mail" })

let browser: Browser
/** Closed after each test, even a failing one, so no event stream outlives its test. */
const opened: Array<BrowserContext> = []
afterEach(async () => {
  for (const context of opened.splice(0)) await context.close()
})
beforeAll(async () => {
  browser = await chromium.launch({ executablePath: chromiumPath, headless: true })
})
afterAll(async () => {
  await browser?.close()
})

const newPage = async (
  url: string,
  headers: Record<string, string> = {},
  viewport = { width: 1280, height: 720 },
) => {
  const context: BrowserContext = await browser.newContext({ extraHTTPHeaders: headers, viewport })
  // A step that cannot happen fails where it stands instead of at the test's timeout.
  context.setDefaultTimeout(30_000)
  opened.push(context)
  const page = await context.newPage()
  const problems: Array<string> = []
  // A dangerous action asks for confirmation, which the operator gives; any other dialog is a script that should not run.
  page.on("dialog", (dialog) => {
    if (dialog.type() === "confirm") return void dialog.accept()
    problems.push(`dialog: ${dialog.message()}`)
    void dialog.dismiss()
  })
  page.on("pageerror", (error) => problems.push(`page error: ${error.message}`))
  page.on("console", (message) => {
    if (message.type() === "error" && !message.text().includes("Failed to load resource")) {
      problems.push(`console: ${message.text()}`)
    }
  })
  await page.goto(url)
  return { page, context, problems }
}

/**
 * A day of history in the leader's aggregates, as a busy cluster leaves them (minute rows with
 * wait and run time histograms), then the hours summed from it by the leader's round: what the
 * overview's charts draw.
 */
const seedAggregates = (schema: string) =>
  Effect.gen(function* () {
    const sql = yield* SqlClient
    yield* sql.unsafe(
      `INSERT INTO ${schema}.job_stats (period, start_at, completed, failed, cancelled, wait, run)
       SELECT 'minute', m, c, f, 0, jsonb_build_object('14', c / 2, '18', c - c / 2 - f, '24', f),
         jsonb_build_object('36', c - 3, '44', 3)
       FROM generate_series(date_trunc('minute', now()) - interval '24 hours',
         date_trunc('minute', now()) - interval '2 minutes', interval '1 minute') AS m,
         LATERAL (SELECT (60 + 40 * sin(extract(epoch FROM m) / 7200))::integer AS c,
           (3 + 3 * sin(extract(epoch FROM m) / 1800))::integer AS f) AS x
       ON CONFLICT (period, start_at) DO UPDATE SET completed = EXCLUDED.completed,
         failed = EXCLUDED.failed, wait = EXCLUDED.wait, run = EXCLUDED.run`,
    )
    yield* sql.unsafe(`DELETE FROM ${schema}.job_stats WHERE period = 'hour'`)
    yield* Maintenance.aggregateStats(Store.make(sql, schema))
  })

describe.each(engines)("dashboard in Chromium on $name", (engine) => {
  const audit: Array<Dashboard.AuditEvent> = []
  let scope: Scope.CloseableScope
  let url: string
  let jobs: Jobs.Jobs["Type"]
  let client: JobsClient["Type"]
  let release: Deferred.Deferred<void>
  const run = <A>(effect: Effect.Effect<A, unknown>) => Effect.runPromise(effect)

  beforeAll(async () => {
    scope = Effect.runSync(Scope.make())
    release = Effect.runSync(Deferred.make<void>())
    const context = await run(Layer.buildWithScope(engine.layer, scope))
    const started = await run(
      startWorkerAndDashboard(
        {
          queues: { default: 5, mail: 2 },
          // The queues page shows what each node's heartbeat reports: report soon.
          heartbeatInterval: "1 second",
          handlers: [
            Echo.handler(({ args }) => Effect.succeed(args.text)),
            Mail.handler(() => Effect.void),
            Boom.handler(({ args }) => Effect.fail(new Error(args.reason))),
            Hold.handler(() => Deferred.await(release)),
          ],
          tasks: [
            Task.make({
              id: "counter",
              name: "Counter",
              every: "1 hour",
              state: Schema.Number,
              initial: 0,
              run: (n) => Effect.succeed(n + 1),
            }),
          ],
          schedules: [Schedules.cron("nightly-report", "0 3 * * *", Echo, { text: "nightly" })],
        },
        {
          prefix: "/admin/jobs",
          access: (request) =>
            Effect.succeed(
              (request.headers["x-test-access"] as Dashboard.Access["level"] | undefined) ?? {
                level: "full",
                user: "ops@example.com",
              },
            ),
          audit: (event) => Effect.sync(() => void audit.push(event)),
          redact: (value, field) =>
            field === "meta" && typeof value === "object" && value !== null && "token" in value
              ? { ...value, token: "[redacted]" }
              : value,
        },
      ).pipe(Effect.provide(context), Scope.extend(scope)),
    )
    url = started.url
    jobs = started.jobs
    client = started.client
    const completed = await run(
      jobs.insert(Echo, { text: "hello" }, { meta: { tenant: 7, token: "s3cret" } }),
    )
    await run(awaitState(jobs, completed.id, "completed"))
    const failed = await run(jobs.insert(Boom, { reason: `disk full ${hostile}` }))
    await run(awaitState(jobs, failed.id, "discarded"))
    await run(jobs.insert(Echo, { text: "later" }, { scheduleIn: "1 hour" }))
    await run(jobs.insert(Hostile, { note: hostile }, { meta: { note: hostile }, scheduleIn: "1 hour" }))
    await run(jobs.insertMany(Mail, [{ to: "a@example.com" }, { to: "b@example.com" }]))
    await run(seedAggregates((jobs as unknown as { schema: string }).schema).pipe(Effect.provide(context)))
  }, 180_000)
  afterAll(async () => {
    await Effect.runPromise(Effect.ignore(Deferred.succeed(release, undefined)))
    await Effect.runPromise(Scope.close(scope, Exit.void))
  })

  it("the overview shows every queue with its counts per state, and the nodes with the leader", async () => {
    const { page, context, problems } = await newPage(`${url}/`)
    const mailRow = page.locator("tr", { has: page.locator("a", { hasText: /^mail$/ }) })
    await expect.poll(() => mailRow.count()).toBe(1)
    expect(await page.locator("h2", { hasText: "Nodes" }).count()).toBe(1)
    expect(await page.locator(".badge", { hasText: "leader" }).count()).toBe(1)
    expect(await page.locator(".card.state-completed .value").innerText()).toMatch(/^[1-9]/)
    // Throughput, queue wait and run time, drawn on the server as SVG.
    expect(await page.locator("#charts figure.chart svg").count()).toBe(3)
    expect(await page.locator("#charts figcaption", { hasText: "nothing finished" }).count()).toBe(0)
    if (screenshots) {
      await page.screenshot({ path: `${screenshots}/overview.png` })
      await page.emulateMedia({ colorScheme: "dark" })
      await page.screenshot({ path: `${screenshots}/overview-dark.png` })
    }
    expect(problems).toEqual([])
    await context.close()
  })

  it("the jobs page has tabs by state with counts, and filters kept in the URL", async () => {
    const { page, context, problems } = await newPage(`${url}/jobs`)
    expect(await page.locator(".tabs a", { hasText: "discarded" }).innerText()).toMatch(/discarded\s+1/)
    await page.locator(".tabs a", { hasText: "discarded" }).click()
    await page.waitForURL(/state=discarded/)
    expect(await page.locator("#jobs tbody tr").count()).toBe(1)
    expect(await page.locator("#jobs tbody tr .type").innerText()).toBe("boom")
    await page.goto(`${url}/jobs`)
    await page.fill("input[name=queue]", "mail")
    await page.click("form.filters button[type=submit]")
    await page.waitForURL(/queue=mail/)
    const types = await page.locator("#jobs tbody tr .type").allInnerTexts()
    expect(types.length).toBe(3)
    expect(new Set(types)).toEqual(new Set(["mail.send", hostile]))
    if (screenshots) await page.screenshot({ path: `${screenshots}/jobs.png` })
    await page.fill("#filter-search", "args.to:b@example.com")
    await page.click("form.filters button[type=submit]")
    await page.waitForURL(/search=args.to/)
    expect(await page.locator("#jobs tbody tr .type").allInnerTexts()).toEqual(["mail.send"])
    await page.goto(`${url}/jobs?error=${encodeURIComponent("disk full")}`)
    expect(await page.locator("#jobs tbody tr .type").allInnerTexts()).toEqual(["boom"])
    await page.goto(`${url}/jobs?search=args.nope`)
    expect(await page.locator(".notice.problem").innerText()).toContain("args.nope")
    expect(problems).toEqual([])
    await context.close()
  })

  it("a job's page shows its args, redacted meta, result, errors and timings", async () => {
    const [done] = await run(client.list({ type: "echo", state: "completed" }))
    const { page, context, problems } = await newPage(`${url}/jobs/${done!.id}`)
    const text = await page.locator("main").innerText()
    expect(text).toContain('"text": "hello"')
    expect(text).toContain('"token": "[redacted]"')
    expect(text).not.toContain("s3cret")
    expect(text).toMatch(/Result\s+"hello"/)
    expect(text).toContain("Run time")
    expect(await page.locator("ol.timeline li").allInnerTexts()).toEqual([
      expect.stringContaining("Inserted"),
      expect.stringMatching(/Attempt 1 started on \S+/),
      expect.stringContaining("Completed"),
    ])
    const [failed] = await run(client.list({ type: "boom" }))
    await page.goto(`${url}/jobs/${failed!.id}`)
    expect(await page.locator("ol.errors li").count()).toBe(1)
    expect(await page.locator("ol.errors .error-text").innerText()).toBe(`disk full ${hostile}`)
    expect(await page.locator("ol.timeline li").last().innerText()).toContain("Discarded")
    expect(await page.locator("ol.timeline li", { hasText: "Attempt 1 failed" }).count()).toBe(1)
    if (screenshots) await page.screenshot({ path: `${screenshots}/job.png`, fullPage: true })
    expect(problems).toEqual([])
    await context.close()
  })

  it("markup in a job's type, args, meta and error is shown as text and never runs", async () => {
    const [job] = await run(client.list({ type: hostile }))
    const [failed] = await run(client.list({ type: "boom" }))
    const { page, problems } = await newPage(`${url}/jobs/${job!.id}`)
    for (const path of [
      `/jobs/${job!.id}`,
      "/jobs?queue=mail",
      `/jobs/${failed!.id}`,
      "/jobs?state=discarded",
    ]) {
      await page.goto(`${url}${path}`)
      await page.locator("main .type").first().hover()
      expect(await page.evaluate("typeof window.__xss")).toBe("undefined")
      expect(await page.locator("main script").count()).toBe(0)
      expect(await page.locator("main [onmouseover]").count()).toBe(0)
      expect(await page.locator("main").innerText()).toContain(hostile)
    }
    expect(problems).toEqual([])
  })

  it("retry, cancel, delete, duplicate and edit-and-retry change the job and are audited", async () => {
    const waiting = await run(jobs.insert(Echo, { text: "wait" }, { scheduleIn: "1 hour" }))
    const { page, context, problems } = await newPage(`${url}/jobs/${waiting.id}`)
    await page.click("button[data-action='job.cancel']")
    await expect.poll(() => page.locator(".notice").innerText()).toBe(`Job ${waiting.id} is cancelled.`)
    expect((await run(client.get(waiting.id))).state).toBe("cancelled")

    await page.click("button[data-action='job.retry']")
    await expect.poll(() => page.locator(".notice").innerText()).toBe(`Job ${waiting.id} is available again.`)
    await run(awaitState(jobs, waiting.id, "completed"))

    await page.reload()
    await page.click("button[data-action='job.duplicate']")
    await page.waitForURL(/\/jobs\/\d+\?notice=/)
    const copyId = Number(/\/jobs\/(\d+)/.exec(page.url())![1])
    expect(copyId).not.toBe(waiting.id)
    const copy = await run(client.get(copyId))
    expect(copy.args).toEqual({ text: "wait" })
    expect(copy.meta).toMatchObject({ duplicatedFrom: waiting.id })

    await page.goto(`${url}/jobs/${waiting.id}`)
    await page.click("details.edit summary")
    await page.fill("details.edit textarea", '{ "text": "edited" }')
    await page.click("button[data-action='job.editAndRetry']")
    await page.waitForURL(/\/jobs\/\d+\?notice=/)
    const edited = await run(client.get(Number(/\/jobs\/(\d+)/.exec(page.url())![1])))
    expect(edited.args).toEqual({ text: "edited" })
    expect(edited.meta).toMatchObject({ retriedFrom: waiting.id })

    await page.goto(`${url}/jobs/${waiting.id}`)
    await page.click("details.edit summary")
    await page.fill("details.edit textarea", "{ not json")
    await page.click("button[data-action='job.editAndRetry']")
    await expect.poll(() => page.locator(".notice.problem").innerText()).toContain("the args are not JSON")

    await page.goto(`${url}/jobs/${waiting.id}`)
    await page.click("button[data-action='job.delete']")
    await page.waitForURL(/\/jobs\?notice=/)
    expect(await run(Effect.either(client.get(waiting.id)))).toMatchObject({ _tag: "Left" })

    const mine = audit.filter((event) => event.target === `job ${waiting.id}`)
    expect(mine.map((event) => [event.action, event.outcome, event.user])).toEqual([
      ["job.cancel", "done", "ops@example.com"],
      ["job.retry", "done", "ops@example.com"],
      ["job.duplicate", "done", "ops@example.com"],
      ["job.editAndRetry", "done", "ops@example.com"],
      ["job.editAndRetry", "failed", "ops@example.com"],
      ["job.delete", "done", "ops@example.com"],
    ])
    expect(problems).toEqual([])
    await context.close()
  })

  it("bulk actions act on the selected jobs and on every job matching the filter", async () => {
    const batch = await run(
      jobs.insertMany(Echo, [{ text: "b1" }, { text: "b2" }, { text: "b3" }], {
        meta: { batch: "bulk" },
        scheduleIn: "1 hour",
      }),
    )
    const { page, problems } = await newPage(`${url}/jobs?search=meta.batch:bulk`)
    expect(await page.locator("#jobs tbody tr").count()).toBe(3)
    await page.check(`input[name=id][value="${batch[0]!.id}"]`)
    await page.check(`input[name=id][value="${batch[1]!.id}"]`)
    await page.click("button[data-action='bulk-cancel-selected']")
    await expect.poll(() => page.locator(".notice").innerText()).toBe("2 jobs cancelled.")
    expect((await run(client.get(batch[0]!.id))).state).toBe("cancelled")
    expect((await run(client.get(batch[2]!.id))).state).toBe("scheduled")
    expect(await page.locator("#jobs tbody tr").count()).toBe(3)

    // Everything matching runs in the background, on a page of its own that shows its progress.
    await page.click("button[data-action='bulk-retry-matching']")
    await page.waitForURL(/\/bulk\/[0-9a-f]+\?notice=/)
    expect(await page.locator(".notice").innerText()).toBe("Retrying 3 jobs.")
    await expect
      .poll(() => page.locator(".bulk-status").innerText(), { timeout: 10_000 })
      .toMatch(/^Done: 3 jobs retried/)
    for (const job of batch) await run(awaitState(jobs, job.id, "completed"))

    await page.goto(`${url}/jobs?search=meta.batch:bulk`)
    await page.click("button[data-action='bulk-delete-matching']")
    await expect
      .poll(() => page.locator(".bulk-status").innerText(), { timeout: 10_000 })
      .toMatch(/^Done: 3 jobs deleted/)
    await page.click("text=← Back")
    expect(await page.locator("#jobs tbody tr").count()).toBe(0)

    // Failures grouped by error: the group of the failed job, retried as a whole.
    await page.goto(`${url}/failures`)
    const group = page.locator("#failures tbody tr", { hasText: "disk full" })
    // Numbers are written N in a group's pattern.
    expect(await group.locator(".pattern").innerText()).toBe(`disk full ${hostile.replace(/[0-9]+/g, "N")}`)
    expect(await group.locator("td.num").allInnerTexts()).toEqual(["0", "1"])
    if (screenshots) await page.screenshot({ path: `${screenshots}/failures.png` })
    expect(audit.filter((event) => event.target.includes("batch")).map((event) => event.action)).toEqual([
      "job.retry",
      "job.delete",
    ])
    expect(problems).toEqual([])
  })

  it("queues pause, resume and scale on every node", async () => {
    const { page, context, problems } = await newPage(`${url}/queues`)
    const mail = page.locator("#queue-mail")
    await mail.locator(".cluster button[data-action='queue.pause']").click()
    await expect.poll(() => page.locator(".notice").innerText()).toBe("Queue mail is paused on every node.")
    expect((await run(client.queueInfo("mail"))).paused).toBe(true)
    expect(await page.locator("#queue-mail h2 .badge", { hasText: "paused" }).count()).toBe(1)
    if (screenshots) await page.screenshot({ path: `${screenshots}/queues.png` })
    await page.locator("#queue-mail .cluster button[data-action='queue.resume']").click()
    await expect.poll(() => page.locator(".notice").innerText()).toBe("Queue mail is resumed on every node.")
    expect((await run(client.queueInfo("mail"))).paused).toBe(false)
    await page.locator("#queue-mail .cluster input[name=concurrency]").fill("7")
    await page.locator("#queue-mail .cluster button[data-action='queue.scale']").click()
    await expect.poll(() => page.locator(".notice").innerText()).toBe("Queue mail runs 7 at once per node.")
    await expect
      .poll(async () => (await run(jobs.queues)).find((queue) => queue.name === "mail")?.limit)
      .toBe(7)
    // On one node: the worker's own row of the queue. A node's row shows what its last
    // heartbeat reported, so the page is reloaded until it shows the button wanted.
    const nodeButton = (action: string) =>
      page.locator(`#queue-mail tr[data-node="${jobs.node}"] button[data-action='${action}']`)
    const untilShown = (button: ReturnType<typeof nodeButton>) =>
      expect
        .poll(
          async () => {
            await page.reload()
            return button.count()
          },
          { timeout: 15_000, interval: 250 },
        )
        .toBe(1)
    await untilShown(nodeButton("queue.pause"))
    await nodeButton("queue.pause").click()
    await expect
      .poll(() => page.locator(".notice").innerText())
      .toBe(`Queue mail is paused on node ${jobs.node}.`)
    await expect
      .poll(async () => (await run(jobs.queues)).find((queue) => queue.name === "mail")?.paused)
      .toBe(true)
    expect((await run(client.queueInfo("mail"))).paused).toBe(false)
    const resumeHere = nodeButton("queue.resume")
    await untilShown(resumeHere)
    await resumeHere.click()
    await expect
      .poll(async () => (await run(jobs.queues)).find((queue) => queue.name === "mail")?.paused)
      .toBe(false)
    expect(problems).toEqual([])
    await context.close()
  })

  it("schedules show their next five runs and pause, resume and run now", async () => {
    const { page, context, problems } = await newPage(`${url}/schedules`)
    const section = page.locator("#schedule-nightly-report")
    const ticks = await section.locator("ol.ticks li").allInnerTexts()
    expect(ticks.length).toBe(5)
    for (const tick of ticks) expect(tick).toMatch(/T03:00:00\.000Z/)
    expect(await section.locator(".cron-words").innerText()).toBe("At 03:00, every day (UTC)")
    if (screenshots) await page.screenshot({ path: `${screenshots}/schedules.png` })
    await section.locator("button[data-action='schedule.pause']").click()
    await expect.poll(() => page.locator(".notice").innerText()).toBe("Schedule nightly-report is paused.")
    await page.locator("#schedule-nightly-report button[data-action='schedule.resume']").click()
    await expect.poll(() => page.locator(".notice").innerText()).toBe("Schedule nightly-report is resumed.")
    await page.locator("#schedule-nightly-report button[data-action='schedule.runNow']").click()
    await page.waitForURL(/\/jobs\/\d+\?notice=/)
    const job = await run(client.get(Number(/\/jobs\/(\d+)/.exec(page.url())![1])))
    expect(job.type).toBe("echo")
    expect(job.args).toEqual({ text: "nightly" })
    expect(job.meta).toMatchObject({ schedule: "nightly-report" })
    expect(problems).toEqual([])
    await context.close()
  })

  it("the tasks page shows each task's schedule, counters and history", async () => {
    const { page, context, problems } = await newPage(`${url}/tasks`)
    const row = page.locator("tr", { hasText: "Counter" })
    expect(await row.innerText()).toContain("every 1h")
    await row.locator("a").click()
    await page.waitForURL(/task=counter/)
    expect(await page.locator("h2", { hasText: "History of counter" }).count()).toBe(1)
    if (screenshots) await page.screenshot({ path: `${screenshots}/tasks.png` })
    expect(problems).toEqual([])
    await context.close()
  })

  it("an open job page shows the job's completion without a reload", async () => {
    const held = await run(jobs.insert(Hold, {}))
    await run(awaitState(jobs, held.id, "executing"))
    const { page, context, problems } = await newPage(`${url}/jobs/${held.id}`)
    expect(await page.locator("h1 .badge").innerText()).toBe("executing")
    await expect.poll(() => page.locator("#live.on").count()).toBe(1)
    await run(Deferred.succeed(release, undefined))
    await expect.poll(() => page.locator("h1 .badge").innerText(), { timeout: 15_000 }).toBe("completed")
    expect(problems).toEqual([])
    await context.close()
  })

  it("read-only access sees every page and no action, and its posts are refused", async () => {
    const [done] = await run(client.list({ type: "echo", state: "completed" }))
    const { page, context, problems } = await newPage(`${url}/jobs/${done!.id}`, {
      "x-test-access": "read-only",
    })
    expect(await page.locator(".badge", { hasText: "read-only" }).count()).toBe(1)
    expect(await page.locator("main form[method=post]").count()).toBe(0)
    await page.goto(`${url}/queues`)
    expect(await page.locator("main form[method=post]").count()).toBe(0)
    // The page's own token, as a form would post it: the refusal is the access hook's.
    const token = (await context.cookies()).find((cookie) => cookie.name === "effect_jobs_csrf")!.value
    const status = await page.evaluate(
      async ([target, csrf]) => {
        const body = new URLSearchParams({ _csrf: csrf, id: target })
        return (await fetch("/admin/jobs/actions/job.delete", { method: "POST", body })).status
      },
      [String(done!.id), token] as const,
    )
    expect(status).toBe(403)
    expect((await run(client.get(done!.id))).state).toBe("completed")
    expect(audit.at(-1)).toMatchObject({ action: "job.delete", outcome: "failed", error: "not allowed" })
    expect(problems).toEqual([])
    await context.close()
  })

  it("forbidden access sees nothing", async () => {
    const { page, context } = await newPage(`${url}/jobs`, { "x-test-access": "forbidden" })
    expect(await page.locator("h1").innerText()).toBe("Forbidden")
    expect(await page.locator("#jobs").count()).toBe(0)
    const response = await page.goto(`${url}/`)
    expect(response!.status()).toBe(403)
    await context.close()
  })

  it("a POST from another origin, or without the form's token, is refused and changes nothing", async () => {
    const target = await run(jobs.insert(Echo, { text: "keep me" }, { scheduleIn: "1 hour" }))
    // A page on another origin that submits a form to the dashboard as soon as it loads.
    const attacker: Server = createServer((_, response) => {
      response.setHeader("content-type", "text/html")
      response.end(`<form id="f" method="post" action="${url}/actions/job.cancel">
<input name="id" value="${target.id}"><input name="_csrf" value="guess"></form>
<script>document.getElementById("f").submit()</script>`)
    })
    await new Promise<void>((resolve) => attacker.listen(0, "127.0.0.1", resolve))
    const port = (attacker.address() as { port: number }).port
    const { page, context } = await newPage(`${url}/jobs`)
    await page.goto(`http://127.0.0.1:${port}/`)
    await page.waitForURL(/actions\/job\.cancel/)
    expect(await page.locator("h1").innerText()).toBe("Refused")
    await page.goto(`${url}/jobs`)
    const status = await page.evaluate(async (id) => {
      const body = new URLSearchParams({ id: String(id) })
      return (await fetch("/admin/jobs/actions/job.cancel", { method: "POST", body })).status
    }, target.id)
    expect(status).toBe(403)
    expect((await run(client.get(target.id))).state).toBe("scheduled")
    attacker.close()
    await context.close()
  })

  it("is usable on a phone-sized screen: nothing wider than the screen but scrolling tables", async () => {
    const { page, context, problems } = await newPage(`${url}/jobs`, {}, { width: 390, height: 844 })
    for (const path of ["/", "/jobs", "/queues", "/schedules", "/tasks"]) {
      await page.goto(`${url}${path}`)
      const overflow = await page.evaluate<number>("document.documentElement.scrollWidth - window.innerWidth")
      expect(overflow, path).toBeLessThanOrEqual(0)
    }
    if (screenshots) {
      await page.goto(`${url}/jobs`)
      await page.screenshot({ path: `${screenshots}/jobs-phone.png` })
    }
    expect(problems).toEqual([])
    await context.close()
  })
})

if (screenshots) NodeFs.mkdirSync(screenshots, { recursive: true })
