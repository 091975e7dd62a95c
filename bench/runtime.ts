/**
 * `npm run bench:runtime`: the runtime's own cost per job, with the database taken out. A
 * store that answers claims and outcome writes from memory feeds one queue of no-op jobs
 * through the real dispatcher, attempt fibers, completer, observer and journal.
 *
 * Prints `{"jobs_per_s":…,"cpu_us_per_job":…}`. Option (environment): BENCH_JOBS (200000).
 */
import { Deferred, Duration, Effect, Schema } from "effect"
import * as Backoff from "../src/Backoff.js"
import * as Observer from "../src/internal/observer.js"
import * as Completer from "../src/internal/queue/completer.js"
import * as QueueRunner from "../src/internal/queue/dispatcher.js"
import * as Journal from "../src/internal/queue/journal.js"
import { serializeOutcome } from "../src/internal/store/outcomes.js"
import { recordFromRow, type SerializedOutcome, type Store } from "../src/internal/store/store.js"
import * as Job from "../src/Job.js"

const total = Number(process.env.BENCH_JOBS ?? 200_000)
const Noop = Job.make("noop", { args: Schema.Struct({ n: Schema.Number }) })

const main = Effect.gen(function* () {
  const allWritten = yield* Deferred.make<void>()
  const now = new Date()
  let nextId = 1
  let written = 0
  // Only what the dispatcher and the completer call; typed, so a change to Store breaks this.
  const memoryStore: Pick<Store, "claim" | "serialize" | "finishSerialized"> = {
    serialize: (outcome, at) => serializeOutcome(outcome, at),
    claim: (queue: string, limit: number) =>
      Effect.sync(() => {
        const rows = []
        for (let i = 0; i < limit && nextId <= total; i++) {
          rows.push(
            recordFromRow({
              id: String(nextId++),
              queue,
              type: "noop",
              args: { n: i },
              priority: 0,
              attempt: 1,
              max_attempts: 20,
              errors: [],
              result: null,
              meta: {},
              scheduled_at: now,
              inserted_at: now,
              state: "executing",
              attempted_at: now,
              attempted_by: "bench",
              completed_at: null,
              cancelled_at: null,
              discarded_at: null,
            }),
          )
        }
        return rows
      }),
    finishSerialized: (outcomes: ReadonlyArray<SerializedOutcome>) =>
      Effect.sync(() => {
        // The real store joins the serialized outcomes into parameters; keep that cost in.
        const plain = outcomes.filter((o) => typeof o !== "string")
        const ids = [
          ...`{${plain.map((o) => o.id).join(",")}}`.slice(1, -1).split(",").filter(Boolean).map(Number),
          ...(
            JSON.parse(`[${outcomes.filter((o) => typeof o === "string").join(",")}]`) as Array<{
              id: number
            }>
          ).map((o) => o.id),
        ]
        void `{${plain.map((o) => o.lease).join(",")}}${plain.map((o) => o.at).join(",")}`
        written += ids.length
        if (written >= total) Deferred.unsafeDone(allWritten, Effect.void)
        return new Set(ids)
      }),
  }
  const store = memoryStore as Store

  const observer = yield* Observer.make(4096)
  const completer = yield* Completer.make(store, 1000)
  yield* Effect.forkScoped(completer.run)
  const runner = yield* QueueRunner.make(
    {
      name: "bench",
      concurrency: 500,
      paused: false,
      pollInterval: Duration.seconds(1),
      shutdownTimeout: Duration.seconds(1),
      tracing: undefined,
      traceLinking: "link",
      deadLetter: undefined,
      limits: undefined,
    },
    {
      store,
      completer,
      observer,
      journal: yield* Journal.make(store, Duration.seconds(1)),
      node: "bench",
      handlers: new Map([["noop", Noop.handler(() => Effect.void)]]),
    },
    Backoff.defaultBackoff,
  )
  const started = performance.now()
  const cpuBefore = process.cpuUsage()
  yield* Effect.forkScoped(Effect.tapErrorCause(runner.run, Effect.logError))
  yield* Deferred.await(allWritten)
  const seconds = (performance.now() - started) / 1000
  const cpu = process.cpuUsage(cpuBefore)
  console.log(
    JSON.stringify({
      jobs: total,
      jobs_per_s: Math.round(total / seconds),
      cpu_us_per_job: Math.round(((cpu.user + cpu.system) / total) * 10) / 10,
    }),
  )
})

Effect.runPromise(Effect.scoped(main)).catch((error) => {
  console.error(error)
  process.exitCode = 1
})
