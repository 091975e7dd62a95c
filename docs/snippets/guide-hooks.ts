import { Context, Effect, Schema } from "effect"
import { Hook, Job, Jobs } from "effect-jobs"

class Tenant extends Context.Tag("app/Tenant")<Tenant, { readonly id: string }>() {}
class Alerts extends Context.Tag("app/Alerts")<
  Alerts,
  { readonly page: (text: string) => Effect.Effect<void> }
>() {}
class Refused extends Schema.TaggedError<Refused>()("Refused", { message: Schema.String }) {}

// A definition's hooks: a service built for each attempt, and a callback when a job gives up.
export const Invoice = Job.make("invoice", {
  args: Schema.Struct({ tenant: Schema.String, orderId: Schema.Number }),
  hooks: [
    Hook.provideService("tenant", Tenant, Effect.succeed({ id: "acme" })),
    Hook.make({
      name: "page on discard",
      discarded: (event) =>
        Effect.flatMap(Alerts, (alerts) => alerts.page(`invoice #${event.id}: ${event.reason}`)),
    }),
  ],
})

// The handler uses Tenant; the definition's middleware provides it, so the layer does not need it.
export const invoice = Invoice.handler(({ args }) =>
  Effect.flatMap(Tenant, (tenant) => Effect.log(`invoicing order ${args.orderId} for ${tenant.id}`)),
)

// A queue's hooks: log annotations and a refusal around every attempt, and a callback per start.
const annotate = Hook.make({
  name: "annotate",
  around: (attempt, job) => Effect.annotateLogs(attempt, { jobId: job.id, jobType: job.type }),
})
const frozen = new Set(["globex"])
const guard = Hook.make({
  name: "frozen tenants",
  around: (attempt, job) =>
    frozen.has((job.args as { tenant?: string }).tenant ?? "")
      ? Effect.fail(new Refused({ message: "this tenant's account is frozen" }))
      : attempt,
})
const count = Hook.make({
  name: "count starts",
  started: (event) => Effect.log(`attempt ${event.attempt} started`),
})

// Requires Alerts (the discard callback's service), besides the engine.
export const JobsLive = Jobs.layer({
  handlers: [invoice],
  queues: { default: { concurrency: 10, hooks: [annotate, guard, count] } },
})
