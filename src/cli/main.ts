/**
 * The command tree of `effect-jobs` and how it ends: a failure prints one line on standard
 * error and exits 1; `doctor` exits 2 when it found something that needs a person.
 */
import { Command } from "@effect/cli"
import * as NodeContext from "@effect/platform-node/NodeContext"
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import { Cause, Console, Effect, Exit } from "effect"
import * as Cluster from "./cluster.js"
import * as Dashboard from "./dashboard.js"
import * as Jobs from "./jobs.js"
import * as Migrate from "./migrate.js"
import { ansiCodes } from "./output.js"
import * as Queues from "./queues.js"
import * as Schedules from "./schedules.js"
import * as Tasks from "./tasks.js"
import * as Work from "./work.js"

const root = Command.make("effect-jobs").pipe(
  Command.withDescription("Migrate, inspect and operate effect-jobs from a terminal."),
  Command.withSubcommands([
    Migrate.command,
    Cluster.doctor,
    Jobs.command,
    Queues.command,
    Schedules.command,
    Tasks.command,
    Cluster.nodes,
    Cluster.stats,
    Work.command,
    Dashboard.command,
  ]),
)

const cli = Command.run(root, { name: "effect-jobs", version: "0.1.0" })

/** One line for a failure a person can act on; @effect/cli has already printed its own usage errors. */
const report = (error: unknown) => {
  if (
    typeof error === "object" &&
    error !== null &&
    (error as { _tag?: unknown })._tag === "ValidationError"
  ) {
    return Effect.void
  }
  const message =
    error instanceof Error || (typeof error === "object" && error !== null && "message" in error)
      ? String((error as { message: unknown }).message)
      : String(error)
  return Console.error(`effect-jobs: ${message.split("\n")[0]}`)
}

const ansi = ansiCodes
const colourOn = (stream: NodeJS.WriteStream) => stream.isTTY === true && process.env.NO_COLOR === undefined
const strip = (on: boolean) => (args: ReadonlyArray<unknown>) =>
  on ? args : args.map((arg) => (typeof arg === "string" ? arg.replace(ansi, "") : arg))

/** Effect's console, without colour where the stream is not a terminal: help and tables alike. */
const plainWhereNeeded = Effect.map(Effect.console, (console): Console.Console => {
  const out = strip(colourOn(process.stdout))
  const err = strip(colourOn(process.stderr))
  return {
    ...console,
    log: (...args) => console.log(...out(args)),
    error: (...args) => console.error(...err(args)),
    unsafe: {
      ...console.unsafe,
      log: (...args) => console.unsafe.log(...out(args)),
      error: (...args) => console.unsafe.error(...err(args)),
    },
  }
})

export const main = (argv: ReadonlyArray<string>) =>
  NodeRuntime.runMain(
    cli(argv).pipe(
      Effect.as(0),
      Effect.catchAll((error) =>
        error instanceof Cluster.NeedsAPerson ? Effect.succeed(2) : Effect.as(report(error), 1),
      ),
      Effect.catchAllDefect((defect) => Effect.as(report(defect), 1)),
      Effect.provide(NodeContext.layer),
      (program) => Effect.flatMap(plainWhereNeeded, (console) => Effect.withConsole(program, console)),
    ),
    {
      disableErrorReporting: true,
      // Interrupted by SIGTERM or Ctrl-C, as `work` is stopped: a clean end once finalizers ran.
      teardown: (exit, onExit) =>
        onExit(
          Exit.isSuccess(exit)
            ? typeof exit.value === "number"
              ? exit.value
              : 0
            : Cause.isInterruptedOnly(exit.cause)
              ? 0
              : 1,
        ),
    },
  )
