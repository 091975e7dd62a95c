import { Context, Effect, Layer, Schema } from "effect"
import { Job, Jobs, JobsPglite } from "effect-jobs"

class Mailer extends Context.Tag("app/Mailer")<
  Mailer,
  { readonly send: (to: string, body: string) => Effect.Effect<void> }
>() {
  static readonly Live = Layer.succeed(Mailer, {
    send: (to, body) => Effect.log(`mail to ${to}: ${body}`),
  })
}

const Welcome = Job.make("welcome", { args: Schema.Struct({ email: Schema.String }) })

// This handler needs a Mailer: its type is Job.Handler<Mailer, "welcome">.
const welcome = Welcome.handler(({ args }) =>
  Effect.flatMap(Mailer, (mailer) => mailer.send(args.email, "Welcome aboard!")),
)

// So Jobs.layer needs one too: Layer<Jobs, ..., SqlClient | Listener | Mailer>.
// Handlers get the services the layer was built with.
export const JobsLive = Jobs.layer({ handlers: [welcome] }).pipe(
  Layer.provide(Mailer.Live),
  Layer.provide(JobsPglite.layer()),
)
