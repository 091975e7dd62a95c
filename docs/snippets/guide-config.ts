import { Config, Effect, Layer, Schema } from "effect"
import { Job, Jobs, JobsPg, JobsPglite } from "effect-jobs"

const SendEmail = Job.make("send-email", { args: Schema.Struct({ to: Schema.String }) })
const sendEmail = SendEmail.handler(({ args }) => Effect.log(`mail to ${args.to}`))

// Everything from the environment: DATABASE_URL, and EFFECT_JOBS_QUEUES=default:10,mail:5,
// EFFECT_JOBS_NODE, EFFECT_JOBS_SHUTDOWN_TIMEOUT and the others that are set. The options
// given in code apply where no variable is set.
export const FromEnv = Jobs.layerConfig({ handlers: [sendEmail], queues: { default: 10 } }).pipe(
  Layer.provideMerge(JobsPg.layerConfig()),
)

// Embedded: the data directory from EFFECT_JOBS_PGLITE_DIR (in memory when it is not set).
export const Embedded = Jobs.layerConfig({ handlers: [sendEmail] }).pipe(
  Layer.provideMerge(JobsPglite.layerConfig()),
)

// Or any Config, named as the app likes: what it reads overrides the options given in code.
export const Custom = Jobs.layerConfig(
  { handlers: [sendEmail] },
  {
    node: Config.string("HOSTNAME"),
    shutdownTimeout: Config.duration("STOP_GRACE").pipe(Config.withDefault("30 seconds")),
  },
).pipe(Layer.provideMerge(JobsPg.layerConfig({ url: Config.redacted("JOBS_DATABASE_URL") })))
