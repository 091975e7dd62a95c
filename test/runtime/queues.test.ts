/**
 * Queues at runtime: pause, resume, scale, start, stop, dead-letter queues; the cluster's
 * queue listing and orphans, ensureQueue, per-queue retention and prune now, delete a queue;
 * pause, resume and scale on one node from a client; completions announced to watchers.
 */
import { SqlClient } from "@effect/sql/SqlClient"
import { describe, expect, layer } from "@effect/vitest"
import { Context, Deferred, Effect, Layer, Logger, LogLevel, Schema, Stream } from "effect"
import { signalChannel } from "../../src/internal/store/migrations.js"
import * as Job from "../../src/Job.js"
import { QueueNotFound } from "../../src/JobError.js"
import * as JobsClient from "../../src/JobsClient.js"
import { Listener } from "../../src/Listener.js"
import { engines } from "../support/engines.js"
import { awaitState, eventually, NotYet, startJobs } from "../support/jobs.js"
import { Boom, Echo, echo } from "./fixtures.js"

const Ping = Job.make("ping", { args: Schema.Struct({ n: Schema.Number }) })

for (const engine of engines) {
  describe(`runtime on ${engine.name}`, () => {
    layer(engine.layer, { timeout: 60_000, excludeTestServices: true })((it) => {
      it.scoped("pauses, resumes and scales a queue, and reports it", () =>
        Effect.gen(function* () {
          const gate = yield* Deferred.make<void>()
          const Gated = Job.make("gated", { args: Schema.Struct({}) })
          const jobs = yield* startJobs({
            handlers: [Gated.handler(() => Deferred.await(gate))],
            queues: { default: 2 },
          })
          yield* jobs.pauseQueue("default")
          yield* jobs.insertMany(
            Gated,
            Array.from({ length: 5 }, () => ({})),
          )
          yield* Effect.sleep("300 millis")
          expect((yield* jobs.queueInfo("default")).states.available.count).toBe(5)
          yield* jobs.resumeQueue("default")
          const running = yield* eventually(
            Effect.flatMap(jobs.queueInfo("default"), (info) =>
              info.running === 2 ? Effect.succeed(info) : Effect.fail("not yet"),
            ),
          )
          expect(running.limit).toBe(2)
          expect(running.states.executing.count).toBe(2)
          yield* jobs.scaleQueue("default", 5)
          yield* eventually(
            Effect.flatMap(jobs.queueInfo("default"), (info) =>
              info.running === 5 ? Effect.void : Effect.fail("not yet"),
            ),
          )
          yield* Deferred.succeed(gate, undefined)
          yield* jobs.drain("default")
          expect((yield* jobs.queueInfo("default")).states.completed.count).toBe(5)
          expect(yield* jobs.queues).toEqual([{ name: "default", limit: 5, running: 0, paused: false }])
          // Asking twice answers twice.
          expect(yield* jobs.queues).toHaveLength(1)
          expect((yield* Effect.flip(jobs.pauseQueue("nope", { localOnly: true })))._tag).toBe(
            "QueueNotFound",
          )
          expect((yield* Effect.flip(jobs.scaleQueue("default", 0)))._tag).toBe("InvalidJobOptions")
        }),
      )

      it.scoped("starts and stops queues at runtime", () =>
        Effect.gen(function* () {
          const jobs = yield* startJobs({ handlers: [echo], queues: {} })
          const job = yield* jobs.insert(Echo, { text: "late queue" }, { queue: "mail" })
          yield* Effect.sleep("200 millis")
          expect((yield* jobs.get(job.id)).state).toBe("available")
          yield* jobs.startQueue("mail", 3)
          expect((yield* Effect.flip(jobs.startQueue("mail", 3)))._tag).toBe("QueueAlreadyRunning")
          yield* awaitState(jobs, job.id, "completed")
          yield* jobs.stopQueue("mail")
          expect(yield* jobs.queues).toEqual([])
          const after = yield* jobs.insert(Echo, { text: "nobody runs me" }, { queue: "mail" })
          yield* Effect.sleep("300 millis")
          expect((yield* jobs.get(after.id)).state).toBe("available")
        }),
      )

      it.scoped("sends a queue's discarded jobs to its dead-letter queue, history kept", () =>
        Effect.gen(function* () {
          const Fragile = Job.make("fragile", { args: Schema.Struct({}), maxAttempts: 1, queue: "main" })
          const fragile = Fragile.handler(({ job }) =>
            job.queue === "main" ? Effect.fail(new Boom({ message: "broken" })) : Effect.void,
          )
          const jobs = yield* startJobs({
            handlers: [fragile],
            queues: { main: { concurrency: 1, deadLetter: "dead" }, dead: 1 },
          })
          const job = yield* jobs.insert(Fragile, {})
          const done = yield* awaitState(jobs, job.id, "completed")
          expect(done.queue).toBe("dead")
          expect(done.meta).toEqual({ deadLetteredFrom: "main" })
          expect(done.attempt).toBe(1)
          expect(done.errors.map((e) => [e.attempt, e.message])).toEqual([[1, "broken"]])
          const own = yield* Effect.flip(
            startJobs({ queues: { loop: { concurrency: 1, deadLetter: "loop" } } }),
          )
          expect((own as { _tag: string })._tag).toBe("InvalidConfig")
          const cycle = yield* Effect.flip(
            startJobs({
              queues: { a: { concurrency: 1, deadLetter: "b" }, b: { concurrency: 1, deadLetter: "a" } },
            }),
          )
          expect((cycle as { message: string }).message).toContain("cycle: a → b → a")
          // Queues started later are checked against the running ones too.
          yield* jobs.startQueue("p", { concurrency: 1, deadLetter: "q" })
          const later = yield* Effect.flip(jobs.startQueue("q", { concurrency: 1, deadLetter: "p" }))
          expect(later.message).toContain("cycle: p → q → p")
        }),
      )

      it.scoped("lists every queue the cluster knows, with its nodes, limits, pause and counts", () =>
        Effect.gen(function* () {
          const jobs = yield* startJobs({
            handlers: [echo],
            queues: {
              default: 2,
              mail: {
                concurrency: 3,
                globalLimit: 5,
                rateLimit: { limit: 10, period: "1 second" },
                deadLetter: "dead",
              },
              dead: 1,
            },
          })
          yield* jobs.pauseQueue("mail")
          yield* jobs.insert(Echo, { text: "waits" }, { queue: "mail" })
          yield* jobs.insert(Echo, { text: "nobody runs me" }, { queue: "elsewhere" })
          yield* jobs.setQueuePruning("archive", { completed: "1 hour" })
          const done = yield* jobs.insert(Echo, { text: "done" })
          yield* awaitState(jobs, done.id, "completed")
          const listed = yield* eventually(
            Effect.flatMap(jobs.listQueues, (queues) =>
              queues.find((q) => q.name === "mail")?.nodes[0]?.paused
                ? Effect.succeed(queues)
                : Effect.fail("not yet"),
            ),
          )
          expect(listed.map((q) => q.name)).toEqual(["archive", "dead", "default", "elsewhere", "mail"])
          const byName = Object.fromEntries(listed.map((q) => [q.name, q]))
          expect(byName.mail).toMatchObject({
            paused: true,
            globalLimit: 5,
            rateLimit: { limit: 10, periodMillis: 1000 },
            deadLetter: "dead",
            orphaned: false,
          })
          expect(byName.mail!.nodes).toEqual([
            {
              node: jobs.node,
              concurrency: 3,
              paused: true,
              running: 0,
              globalLimit: 5,
              rateLimit: { limit: 10, periodMillis: 1000 },
              deadLetter: "dead",
            },
          ])
          expect(byName.mail!.counts.available).toBe(1)
          expect(byName.default!.counts.completed).toBe(1)
          expect(byName.default!.nodes.map((n) => [n.node, n.concurrency])).toEqual([[jobs.node, 2]])
          expect(byName.elsewhere).toMatchObject({ nodes: [], orphaned: true })
          expect(byName.elsewhere!.counts.available).toBe(1)
          expect(byName.archive).toMatchObject({
            nodes: [],
            orphaned: false,
            pruning: { completed: 3_600_000 },
          })
        }),
      )

      it.scoped("queueInfo fails with QueueNotFound for a queue the cluster does not know", () =>
        Effect.gen(function* () {
          const jobs = yield* startJobs({ handlers: [echo] })
          const typo = yield* Effect.flip(jobs.queueInfo("defualt"))
          expect(typo).toMatchObject({ _tag: "QueueNotFound", queue: "defualt", cluster: true })
          expect(typo.message).toContain("no live node runs it")
          // A stored state alone makes a queue known, and so do its jobs.
          yield* jobs.scaleQueue("later", 4)
          expect((yield* jobs.queueInfo("later")).runningHere).toBe(false)
          expect((yield* jobs.queueInfo("default")).runningHere).toBe(true)
        }),
      )

      it.scoped("ensureQueue starts a queue once, and refuses other settings", () =>
        Effect.gen(function* () {
          const jobs = yield* startJobs({ handlers: [echo], queues: {} })
          expect(yield* jobs.ensureQueue("mail", { concurrency: 2, pollInterval: "1 second" })).toBe(
            "started",
          )
          expect(yield* jobs.ensureQueue("mail", { concurrency: 2, pollInterval: 1000 })).toBe("running")
          const conflict = yield* Effect.flip(jobs.ensureQueue("mail", 5))
          expect(conflict).toMatchObject({ _tag: "QueueConfigConflict", queue: "mail" })
          expect(conflict.message).toContain("concurrency is 2, asked 5")
          expect(yield* jobs.queues).toEqual([{ name: "mail", limit: 2, running: 0, paused: false }])
          // The node's row shows the queue at once, without waiting for the next heartbeat.
          const [self] = yield* jobs.nodes
          expect(self!.queues).toEqual(["mail"])
          expect((yield* Effect.flip(jobs.ensureQueue("bad name!", 1)))._tag).toBe("InvalidJobOptions")
        }),
      )

      it.scoped("pause and resume answer whether anything changed", () =>
        Effect.gen(function* () {
          const jobs = yield* startJobs({
            handlers: [echo],
            queues: { default: 1, quiet: { concurrency: 1, paused: true } },
          })
          expect(yield* jobs.pauseQueue("default")).toBe("paused")
          expect(yield* jobs.pauseQueue("default")).toBe("already_paused")
          expect(yield* jobs.resumeQueue("default")).toBe("resumed")
          expect(yield* jobs.resumeQueue("default")).toBe("already_active")
          expect(yield* jobs.pauseQueue("default", { localOnly: true })).toBe("paused")
          expect(yield* jobs.pauseQueue("default", { localOnly: true })).toBe("already_paused")
          expect(yield* jobs.resumeQueue("default", { localOnly: true })).toBe("resumed")
          expect(yield* jobs.resumeQueue("default", { localOnly: true })).toBe("already_active")
          // Started paused, never paused cluster-wide: a resume still resumes it.
          expect(yield* jobs.resumeQueue("quiet")).toBe("resumed")
          expect((yield* jobs.queues).find((q) => q.name === "quiet")!.paused).toBe(false)
          // Callers that do not care are unchanged.
          const ignored: Effect.Effect<void, unknown> = jobs.pauseQueue("default")
          yield* ignored
        }),
      )

      it.scoped(
        "a resume here alone after a cluster-wide pause stands when the pause's notification arrives",
        () =>
          Effect.gen(function* () {
            const jobs = yield* startJobs({ handlers: [echo], queues: { default: 1 } })
            expect(yield* jobs.pauseQueue("default")).toBe("paused")
            // The pause's own notification is still on its way back to this node.
            expect(yield* jobs.resumeQueue("default", { localOnly: true })).toBe("resumed")
            const job = yield* jobs.insert(Echo, { text: "runs while resumed here" })
            yield* awaitState(jobs, job.id, "completed")
            yield* Effect.sleep("300 millis")
            expect((yield* jobs.queueInfo("default")).paused).toBe(false)
          }),
      )

      it.scoped("a queue's own retention, prune now, and pruning that waits while it is paused", () =>
        Effect.gen(function* () {
          const jobs = yield* startJobs({
            handlers: [echo],
            queues: { default: 2, keep: 2 },
            prune: { interval: "100 millis" },
          })
          yield* jobs.setQueuePruning("default", { completed: "200 millis" })
          const first = yield* jobs.insert(Echo, { text: "pruned by the leader" })
          yield* awaitState(jobs, first.id, "completed")
          yield* eventually(
            Effect.flatMap(Effect.flip(jobs.get(first.id)), (e) =>
              e._tag === "JobNotFound" ? Effect.void : Effect.fail(e),
            ),
          )
          // Paused: the leader leaves its finished jobs. The job finishes under a long retention,
          // which turns short only once the pause is stored, so nothing races the pause.
          yield* jobs.setQueuePruning("default", { completed: "1 day" })
          const kept = yield* jobs.insert(Echo, { text: "kept while paused" })
          yield* awaitState(jobs, kept.id, "completed")
          yield* jobs.pauseQueue("default")
          yield* jobs.setQueuePruning("default", { completed: "200 millis" })
          yield* Effect.sleep("800 millis")
          expect((yield* jobs.get(kept.id)).state).toBe("completed")
          // Prune now does not wait, and says how many it deleted.
          expect(yield* jobs.pruneQueue("default")).toBe(1)
          expect(yield* jobs.pruneQueue("default")).toBe(0)
          // The other queue keeps the runtime's day.
          const other = yield* jobs.insert(Echo, { text: "kept a day" }, { queue: "keep" })
          yield* awaitState(jobs, other.id, "completed")
          expect(yield* jobs.pruneQueue("keep")).toBe(0)
          expect((yield* Effect.flip(jobs.pruneQueue("nope")))._tag).toBe("QueueNotFound")
          expect((yield* Effect.flip(jobs.setQueuePruning("keep", { completed: -1 })))._tag).toBe(
            "InvalidJobOptions",
          )
          expect(
            (yield* Effect.flip(jobs.setQueuePruning("keep", { retryable: "1 day" } as never)))._tag,
          ).toBe("InvalidJobOptions")
        }),
      )

      it.scoped("deletes a queue no live node runs, its jobs when asked; refuses one that runs", () =>
        Effect.gen(function* () {
          const jobs = yield* startJobs({ handlers: [echo], queues: { default: 1 } })
          const refused = yield* Effect.flip(jobs.deleteQueue("default"))
          expect(refused).toMatchObject({ _tag: "QueueInUse", queue: "default", nodes: [jobs.node] })
          yield* jobs.insertMany(Echo, [{ text: "a" }, { text: "b" }], { queue: "gone" })
          yield* jobs.pauseQueue("gone")
          expect(yield* jobs.deleteQueue("gone")).toBe(0)
          // The jobs stay, orphaned; the stored pause is gone.
          const [orphaned] = (yield* jobs.listQueues).filter((q) => q.name === "gone")
          expect(orphaned).toMatchObject({ paused: false, orphaned: true })
          expect(yield* jobs.deleteQueue("gone", { jobs: true })).toBe(2)
          expect((yield* jobs.listQueues).map((q) => q.name)).toEqual(["default"])
          expect((yield* Effect.flip(jobs.deleteQueue("gone")))._tag).toBe("QueueNotFound")
        }),
      )

      it.scoped("finds orphans, and the leader warns of each once", () =>
        Effect.gen(function* () {
          const warnings: Array<string> = []
          const capture = Logger.add(
            Logger.make(({ logLevel, message }) => {
              if (LogLevel.greaterThanEqual(logLevel, LogLevel.Warning)) warnings.push(String(message))
            }),
          )
          const Unhandled = Job.make("unhandled", { args: Schema.Struct({}) })
          const jobs = yield* startJobs({
            handlers: [echo],
            queues: { default: 1 },
            orphanInterval: "100 millis",
            heartbeatInterval: "100 millis",
          }).pipe(Effect.provide(capture))
          yield* jobs.insert(Echo, { text: "nobody runs me" }, { queue: "elsewhere" })
          // Scheduled, so that no dispatcher claims them (and fails them) while the test looks.
          yield* jobs.insertMany(Unhandled, [{}, {}], { scheduleIn: "1 hour" })
          expect(yield* jobs.orphans).toEqual({
            queues: [{ queue: "elsewhere", available: 1 }],
            types: [{ type: "unhandled", waiting: 2, queues: ["default"] }],
          })
          yield* eventually(
            Effect.suspend(() =>
              warnings.filter((w) => w.includes("no live node")).length >= 2
                ? Effect.void
                : Effect.fail("not yet"),
            ),
          )
          // Several rounds later, still one warning each.
          yield* Effect.sleep("600 millis")
          expect(warnings.filter((w) => w.includes(`queue "elsewhere"`))).toHaveLength(1)
          expect(warnings.filter((w) => w.includes("no live node has a handler"))).toHaveLength(1)
          yield* jobs.startQueue("elsewhere", 1)
          yield* eventually(
            Effect.flatMap(jobs.orphans, (o) =>
              o.queues.length === 0 ? Effect.void : Effect.fail("not yet"),
            ),
          )
        }),
      )
      it.scoped("pauses, scales and resumes a queue on the node named, and no other way", () =>
        Effect.gen(function* () {
          const jobs = yield* startJobs({ queues: { mail: 4, other: 2 }, heartbeatInterval: "100 millis" })
          const context = yield* Layer.build(
            JobsClient.layer({ schema: jobs.schema }).pipe(
              Layer.provide(Layer.succeed(SqlClient, yield* SqlClient)),
            ),
          )
          const client = Context.get(context, JobsClient.JobsClient)
          const mailHere = Effect.map(jobs.queues, (queues) => queues.find((queue) => queue.name === "mail")!)
          const until = (check: (queue: { paused: boolean; limit: number }) => boolean) =>
            eventually(
              Effect.flatMap(mailHere, (queue) =>
                check(queue) ? Effect.succeed(queue) : Effect.fail(new NotYet()),
              ),
            )

          expect(yield* client.pauseQueue("mail", { node: jobs.node })).toBe("paused")
          yield* until((queue) => queue.paused)
          // Stored for the node alone: the queue is not paused cluster-wide, nor the node's other queues.
          expect((yield* client.queueInfo("mail")).paused).toBe(false)
          expect((yield* jobs.queues).find((queue) => queue.name === "other")!.paused).toBe(false)

          yield* client.scaleQueue("mail", 9, { node: jobs.node })
          yield* until((queue) => queue.limit === 9 && queue.paused)
          // The heartbeat reports the pause, so a second pause knows it.
          yield* eventually(
            Effect.flatMap(client.nodes, (nodes) =>
              nodes[0]?.queueConfigs.mail?.paused ? Effect.void : Effect.fail(new NotYet()),
            ),
          )
          expect(yield* client.pauseQueue("mail", { node: jobs.node })).toBe("already_paused")
          expect(yield* client.resumeQueue("mail", { node: jobs.node })).toBe("resumed")
          yield* until((queue) => !queue.paused && queue.limit === 9)

          // A cluster-wide pause after the node's resume applies to it too.
          yield* client.pauseQueue("mail")
          yield* until((queue) => queue.paused)

          const refused = yield* Effect.flip(client.pauseQueue("mail", { node: "no-such-node" }))
          expect(refused).toEqual(new QueueNotFound({ queue: "mail", node: "no-such-node" }))
          expect(refused.message).toBe('queue "mail" does not run on a live node "no-such-node"')
        }),
      )
      it.scoped("a node announces its completions on the channel long before its next ping", () =>
        Effect.gen(function* () {
          const jobs = yield* startJobs({
            handlers: [Ping.handler(() => Effect.void)],
            pingInterval: "1 minute",
          })
          const heard = yield* Deferred.make<string>()
          yield* (yield* Listener).listen(signalChannel(jobs.schema)).pipe(
            Stream.filter((payload) => payload.includes('"finished"')),
            Stream.take(1),
            Stream.runForEach((payload) => Deferred.succeed(heard, payload)),
            Effect.forkScoped,
          )
          // Until the subscription is live a completion may go unheard: complete jobs until one is.
          let n = 0
          const payload = yield* eventually(
            Effect.gen(function* () {
              const job = yield* jobs.insert(Ping, { n: n++ })
              yield* awaitState(jobs, job.id, "completed")
              const done = yield* Deferred.poll(heard)
              if (done._tag === "None") return yield* Effect.fail(new NotYet("no finished signal yet"))
              return yield* done.value
            }),
            "8 seconds",
          )
          expect(JSON.parse(payload)).toEqual({ kind: "finished", node: jobs.node })
        }),
      )
    })
  })
}
