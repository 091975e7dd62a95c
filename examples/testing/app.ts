/**
 * A small app whose jobs signup.test.ts and email.test.ts test with effect-jobs/testing: a
 * sign-up sends a welcome email at once and schedules a reminder for the next day; emails to
 * a bouncing address fail and are retried.
 */
import { Effect, Schema } from "effect"
import { Job, Jobs } from "effect-jobs"

export class Bounced extends Schema.TaggedError<Bounced>()("Bounced", { to: Schema.String }) {}

export const SendEmail = Job.make("send-email", {
  args: Schema.Struct({ to: Schema.String, template: Schema.Literal("welcome", "reminder") }),
  result: Schema.Struct({ messageId: Schema.String }),
  queue: "mail",
  maxAttempts: 3,
  backoff: "1 minute",
})

export const sendEmail = SendEmail.handler(({ args, job }) =>
  args.to.endsWith("@bounce.example")
    ? Effect.fail(new Bounced({ to: args.to }))
    : Effect.succeed({ messageId: `${args.template}-${args.to}-${job.attempt}` }),
)

export const SignUp = Job.make("sign-up", {
  args: Schema.Struct({ email: Schema.String }),
})

export const signUp = SignUp.handler(({ args }) =>
  Effect.gen(function* () {
    const jobs = yield* Jobs.Jobs
    yield* jobs.insert(SendEmail, { to: args.email, template: "welcome" })
    yield* jobs.insert(SendEmail, { to: args.email, template: "reminder" }, { scheduleIn: "1 day" })
  }),
)

export const handlers = [sendEmail, signUp] as const

/** What the app's request handler does: store the sign-up's job. */
export const register = (email: string) => Effect.flatMap(Jobs.Jobs, (jobs) => jobs.insert(SignUp, { email }))
