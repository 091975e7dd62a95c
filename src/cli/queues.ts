/**
 * `queues` lists every queue the cluster knows of (run by a live node, or holding jobs) with
 * its counts; `queues pause|resume|scale NAME` act on every node through the database.
 */
import { Args, Command } from "@effect/cli"
import { Effect } from "effect"
import * as Operator from "../internal/api/operator.js"
import { InvalidCommand } from "../JobError.js"
import { JobState } from "../JobRecord.js"
import { JobsClient } from "../JobsClient.js"
import * as Global from "./global.js"
import * as Output from "./output.js"

const name = Args.text({ name: "queue" }).pipe(Args.withDescription("The queue's name."))

const listing = ({ global }: { readonly global: Global.Global }) =>
  Effect.gen(function* () {
    const client = yield* JobsClient
    const nodes = yield* client.nodes
    const { counts } = yield* Operator.stats(yield* Global.store(global.schema), 1)
    const names = [...new Set([...nodes.flatMap((n) => n.queues), ...counts.map((c) => c.queue)])].sort()
    const queues = yield* Effect.forEach(names, (queue) =>
      Effect.map(client.queueInfo(queue), (info) => ({
        name: queue,
        paused: info.paused,
        nodes: nodes.filter((n) => n.queues.includes(queue)).map((n) => n.id),
        counts: Object.fromEntries(JobState.literals.map((state) => [state, info.states[state].count])),
      })),
    )
    yield* Output.print(global.json, queues, () =>
      Output.table(
        ["queue", "paused", "nodes", ...JobState.literals],
        queues.map((q) => [
          q.name,
          q.paused ? Output.yellow("paused") : "no",
          String(q.nodes.length),
          ...JobState.literals.map((state) => String(q.counts[state])),
        ]),
      ),
    )
  }).pipe(Effect.provide(Global.clientLayer(global)))

const pauseOrResume = (action: "pause" | "resume") =>
  Command.make(action, { global: Global.options, name }, ({ global, name }) =>
    Effect.gen(function* () {
      const client = yield* JobsClient
      yield* action === "pause" ? client.pauseQueue(name) : client.resumeQueue(name)
      yield* Output.print(global.json, { queue: name, paused: action === "pause" }, () =>
        action === "pause"
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
  Command.withSubcommands([pauseOrResume("pause"), pauseOrResume("resume"), scale]),
)
