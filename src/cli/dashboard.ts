/** `dashboard`: serves the dashboard alone over the options' database until Ctrl-C or SIGTERM. */
import { Command, Options } from "@effect/cli"
import { Console, Effect, Layer, Option } from "effect"
import * as Dashboard from "../dashboard/index.js"
import { InvalidCommand } from "../JobError.js"
import * as Global from "./global.js"

/** Read from the environment rather than an option, so that it never shows in a process list. */
const passwordVariable = "EFFECT_JOBS_DASHBOARD_PASSWORD"

export const command = Command.make(
  "dashboard",
  {
    global: Global.options,
    port: Options.integer("port").pipe(
      Options.withDescription("The port to listen on."),
      Options.withDefault(4000),
    ),
    host: Options.text("host").pipe(
      Options.withDescription("The address to listen on. Defaults to 127.0.0.1: this machine only."),
      Options.withDefault("127.0.0.1"),
    ),
    user: Options.text("basic-auth-user").pipe(
      Options.withDescription(`Ask for this user name and the password in ${passwordVariable}.`),
      Options.optional,
    ),
  },
  ({ global, port, host, user }) =>
    Effect.gen(function* () {
      const password = process.env[passwordVariable]
      if (Option.isSome(user) && (password === undefined || password === "")) {
        return yield* new InvalidCommand({
          message: `--basic-auth-user needs the password in ${passwordVariable}`,
        })
      }
      const basicAuth = Option.isSome(user) ? { username: user.value, password: password! } : undefined
      const served = Dashboard.layer({ port, host, basicAuth }).pipe(
        Layer.provide(Global.clientLayer(global)),
      )
      return yield* Effect.scoped(
        Effect.zipRight(
          Layer.build(served),
          Effect.zipRight(Console.log(`dashboard on http://${host}:${port}/`), Effect.never),
        ),
      )
    }),
).pipe(Command.withDescription("Serve the dashboard on a port, for the database the options name."))
