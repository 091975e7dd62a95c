import { Effect, Schema } from "effect"
import { Job, JobFilter, Jobs } from "effect-jobs"

const SendEmail = Job.make("send-email", {
  args: Schema.Struct({ user: Schema.Struct({ id: Schema.Number }), template: Schema.String }),
})

export const program = Effect.gen(function* () {
  const jobs = yield* Jobs.Jobs

  // Pages by cursor: `next` is null on the last page.
  const bounced = { state: "discarded", error: "mailbox full", limit: 100 } as const
  let page = yield* jobs.listPage(bounced)
  for (;;) {
    for (const job of page.jobs) yield* Effect.log(`#${job.id} bounced at ${job.discardedAt?.toISOString()}`)
    if (page.next === null) break
    page = yield* jobs.listPage({ ...bounced, cursor: page.next })
  }

  // The text form a command line or a search box takes, read into a filter.
  const filter = yield* JobFilter.parse(["args.user.id:42", "meta.tenant:acme"])
  const { count, estimated } = yield* jobs.count({ ...filter, state: ["available", "scheduled"] })
  yield* Effect.log(`${estimated ? "about " : ""}${count} waiting jobs of user 42`)

  // Bulk actions go a batch at a time and answer how many jobs they changed.
  const cancelled = yield* jobs.cancelAll({ ...filter, state: ["available", "scheduled"] })
  const retried = yield* jobs.retryAll({ state: "discarded", inserted: { from: new Date("2026-05-01") } })
  const deleted = yield* jobs.deleteAll({
    schedule: "nightly-report",
    finished: { to: new Date("2026-05-01") },
  })
  yield* Effect.log(`cancelled ${cancelled}, retried ${retried}, deleted ${deleted}`)

  // Through its definition a job comes decoded and typed: no casts.
  const job = yield* jobs.get(42, SendEmail)
  yield* Effect.log(`job 42 mails user ${job.args.user.id} with ${job.args.template}`)
  const waiting = yield* jobs.list({ state: "available" }, SendEmail)
  yield* Effect.log(waiting.map((j) => j.args.template))
})
