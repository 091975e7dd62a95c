/**
 * `queues` lists every queue the cluster knows of (run by a live node, or holding jobs) with
 * its counts; `queues pause|resume|scale NAME` act on every node through the database.
 */
import { Args, Command } from "@effect/cli"
import { Effect } from "effect"
import { InvalidCommand } from "../JobError.js"
import { JobState } from "../JobRecord.js"
import { JobsClient } from "../JobsClient.js"
import * as Global from "./global.js"
import * as Output from "./output.js"

const name = Args.text({ name: "queue" }).pipe(Args.withDescription("The queue's name."))

const listing = ({ global }: { readonly global: Global.Global }) =>
  Effect.gen(function* () {
    const queues = yield* (yield* JobsClient).listQueues
    yield* Output.print(global.json, queues, () =>
      Output.table(
        ["queue", "paused", "nodes", ...JobState.literals],
        queues.map((q) => [
          q.orphaned ? `${q.name} ${Output.red("(orphaned)")}` : q.name,
          q.paused ? Output.yellow("paused") : "no",
          String(q.nodes.length),
          ...JobState.literals.map((state) => String(q.counts[state])),
        ]),
      ),
    )
  }).pipe(Effect.provide(Global.clientLayer(global)))

const orphans = Command.make("orphans", { global: Global.options }, ({ global }) =>
  Effect.gen(function* () {
    const found = yield* (yield* JobsClient).orphans
    yield* Output.print(global.json, found, () =>
      [
        Output.bold("queues with available jobs that no live node runs"),
        Output.table(
          ["queue", "available"],
          found.queues.map((q) => [q.queue, String(q.available)]),
        ),
        "",
        Output.bold("job types with waiting jobs that no live node has a handler for"),
        Output.table(
          ["type", "waiting", "queues"],
          found.types.map((t) => [t.type, String(t.waiting), t.queues.join(",")]),
        ),
      ].join("\n"),
    )
  }).pipe(Effect.provide(Global.clientLayer(global))),
).pipe(
  Command.withDescription("Queues no live node runs and job types no live node handles, with waiting jobs."),
)

const pauseOrResume = (action: "pause" | "resume") =>
  Command.make(action, { global: Global.options, name }, ({ global, name }) =>
    Effect.gen(function* () {
      const client = yield* JobsClient
      const result = yield* action === "pause" ? client.pauseQueue(name) : client.resumeQueue(name)
      yield* Output.print(global.json, { queue: name, result }, () =>
        result === "already_paused"
          ? `queue ${name} was paused already`
          : result === "already_active"
            ? `queue ${name} was running already`
            : action === "pause"
              ? `queue ${name} paused on every node (running jobs finish)`
              : `queue ${name} resumed on every node`,
      )
    }).pipe(Effect.provide(Global.clientLayer(global))),
  ).pipe(
    Command.withDescription(
      action === "pause"
        ? "Stop claiming the queue's jobs on every node; nodes starting later start it paused."
        : "Undo a pause on every node.",
    ),
  )

const scale = Command.make(
  "scale",
  {
    global: Global.options,
    name,
    concurrency: Args.text({ name: "concurrency" }).pipe(
      Args.withDescription("How many of its jobs each node runs at once."),
    ),
  },
  ({ global, name, concurrency }) =>
    Effect.gen(function* () {
      const client = yield* JobsClient
      if (!/^\d+$/.test(concurrency)) {
        return yield* new InvalidCommand({
          message: `concurrency ${JSON.stringify(concurrency)} is not a whole number`,
        })
      }
      yield* client.scaleQueue(name, Number(concurrency))
      yield* Output.print(
        global.json,
        { queue: name, concurrency: Number(concurrency) },
        () => `queue ${name} scaled to ${concurrency} on every node`,
      )
    }).pipe(Effect.provide(Global.clientLayer(global))),
).pipe(Command.withDescription("Set how many of the queue's jobs each node runs at once."))

export const command = Command.make("queues", { global: Global.options }, listing).pipe(
  Command.withDescription("List the queues: run by a live node or holding jobs, with their counts."),
  Command.withSubcommands([pauseOrResume("pause"), pauseOrResume("resume"), scale, orphans]),
)
