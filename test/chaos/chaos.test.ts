/**
 * The crash suite: real processes, real kills, real PostgreSQL. Every attempt writes a
 * ledger row when it starts and another when its handler returns, and a trigger adds every
 * outcome written to a job, so the checks prove what ran where and what was written, rather
 * than trusting the runtime's own bookkeeping. `npm test` runs the short scale, after (never
 * beside) the other test files; `npm run test:chaos` the full one (see docs/reliability.md).
 */
import { SqlClient } from "@effect/sql/SqlClient"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Either, Layer, Random, Ref, Schedule } from "effect"
import { it as vitest } from "vitest"
import * as JobsPg from "../../src/JobsPg.js"
import { dropSchema, freshSchema, postgresAvailable, postgresUrl } from "../support/engines.js"
import { startJobs } from "../support/jobs.js"
import {
  awaitOutcome,
  createLedger,
  isAlive,
  kill,
  type LedgerEntry,
  ledgerViolations,
  type Outcome,
  outcome,
  postgresBin,
  privatePostgres,
  readLedger,
  runsByJob,
  sized,
  startWorker,
  type Worker,
  type WorkerConfig,
} from "./harness.js"
import { Chaos, ChaosWithResult, chaosRun } from "./job.js"

const Db = JobsPg.layer({ url: postgresUrl, maxConnections: 8 })

/**
 * A schema with a ledger, and a node in this process that inserts (and runs nothing unless
 * asked). When it runs jobs, its handlers keep the ledger too and sleep `localMillis` when
 * given, the args' range when not.
 */
const setup = (options: { readonly queues?: Record<string, number>; readonly localMillis?: number } = {}) =>
  Effect.gen(function* () {
    const sql = yield* SqlClient
    const schema = freshSchema()
    yield* Effect.addFinalizer(() => dropSchema(sql, schema))
    const jobs = yield* startJobs({
      schema,
      queues: options.queues ?? {},
      handlers: [
        Chaos.handler(({ args, job }) =>
          Effect.asVoid(chaosRun(sql, schema, args, job, options.localMillis)),
        ),
        ChaosWithResult.handler(({ args, job }) => chaosRun(sql, schema, args, job, options.localMillis)),
      ],
      heartbeatInterval: "500 millis",
      nodeTimeout: "3 seconds",
    })
    yield* createLedger(sql, schema)
    return { sql, schema, jobs }
  })

const work = (count: number, minMillis: number, maxMillis: number) =>
  Array.from({ length: count }, (_, n) => ({ n, minMillis, maxMillis }))

/** How many jobs have a completion written in the ledger. */
const completedInLedger = (entries: ReadonlyArray<LedgerEntry>) =>
  new Set(entries.filter((e) => e.event === "outcome" && e.state === "completed").map((e) => e.jobId)).size

const timeout = sized(180_000, 900_000)

/** Nothing left to run: every job completed, discarded or cancelled (so a wrong end stops the wait too). */
const settled =
  (total: number) =>
  ({ states }: Outcome) =>
    (states.completed ?? 0) + (states.discarded ?? 0) + (states.cancelled ?? 0) === total

const unavailable = `PostgreSQL at ${postgresUrl} does not answer (with CI=true this fails the run instead)`
if (!postgresAvailable) {
  process.stderr.write(`crash suite skipped: ${unavailable}\n`)
  // A skipped test with its reason, so the run's summary counts and names it.
  describe("crash suite", () => vitest("runs against PostgreSQL", (ctx) => ctx.skip(unavailable)))
}

describe.runIf(postgresAvailable)("crash suite", () => {
  it.live(
    "claim race: four processes never run a job twice and finish them all",
    () =>
      Effect.gen(function* () {
        const { sql, schema, jobs } = yield* setup()
        const total = sized(4_000, 100_000)
        for (let i = 0; i < total; i += 5_000)
          yield* jobs.insertMany(Chaos, work(Math.min(5_000, total - i), 0, 0))
        yield* Effect.all(
          Array.from({ length: 4 }, () => startWorker({ schema, concurrency: 16 })),
          { concurrency: "unbounded" },
        )
        const result = yield* awaitOutcome(sql, schema, settled(total), timeout)
        expect(result.states).toEqual({ completed: total })
        expect(result.ledgerJobs).toBe(total)
        expect(result.repeated).toEqual([])
        const ledger = yield* readLedger(sql, schema)
        expect(ledgerViolations(ledger)).toEqual([])
        expect(completedInLedger(ledger)).toBe(total)
      }).pipe(Effect.scoped, Effect.provide(Db)),
    timeout,
  )

  it.live(
    "random SIGKILL: nothing is lost, and a job runs again only after a run its killed process left open",
    () =>
      Effect.gen(function* () {
        const { sql, schema, jobs } = yield* setup()
        const total = sized(600, 20_000)
        yield* jobs.insertMany(Chaos, work(total, sized(20, 50), sized(100, 500)))
        const config: WorkerConfig = { schema, concurrency: 16 }
        const workers: Array<Worker> = yield* Effect.all(Array.from({ length: 4 }, () => startWorker(config)))
        // The process each kill took, and when (this machine's clock, which the database shares).
        const killedAt = new Map<number, number>()
        const until = Date.now() + sized(20_000, 180_000)
        while (Date.now() < until) {
          yield* Effect.sleep(sized(2_000, 5_000) + (yield* Random.nextIntBetween(0, sized(2_000, 10_000))))
          const index = yield* Random.nextIntBetween(0, workers.length)
          yield* kill(workers[index]!, "SIGKILL")
          killedAt.set(workers[index]!.child.pid!, Date.now())
          workers[index] = yield* startWorker(config)
        }
        const result = yield* awaitOutcome(sql, schema, settled(total), timeout)
        const ledger = yield* readLedger(sql, schema)
        // A run may be followed by another only if the kill took its process while it was open.
        expect(
          ledgerViolations(
            ledger,
            (run) => (killedAt.get(run.start.pid) ?? Number.NEGATIVE_INFINITY) > run.start.at,
          ),
        ).toEqual([])
        expect(result.states).toEqual({ completed: total })
        expect(result.ledgerJobs).toBe(total)
        expect(completedInLedger(ledger)).toBe(total)
      }).pipe(Effect.scoped, Effect.provide(Db)),
    timeout,
  )

  it.live(
    "zombie: a worker frozen past the rescue time cannot complete the jobs it lost",
    () =>
      Effect.gen(function* () {
        // This node's runs outlast what is left of the zombie's, so the zombie's late
        // completions come while this node holds the jobs: only the lease can refuse them.
        const { sql, schema, jobs } = yield* setup({ localMillis: 5_000 })
        const zombie = yield* startWorker({ schema, concurrency: 2 })
        // One job whose completion has no result and one with a result: they are written by
        // different statements, and both must refuse the zombie.
        const args = { n: 0, minMillis: 3_000, maxMillis: 3_000, stubborn: true }
        const plain = yield* jobs.insert(Chaos, args)
        const withResult = yield* jobs.insert(ChaosWithResult, args)
        const ids = [plain.id, withResult.id]
        const runsOn = (node: string, event: "start" | "end") =>
          Effect.repeat(readLedger(sql, schema), {
            until: (ledger) =>
              ids.every((id) => ledger.some((e) => e.jobId === id && e.event === event && e.node === node)),
            schedule: Schedule.spaced("100 millis"),
          }).pipe(Effect.timeout("30 seconds"))
        yield* runsOn(zombie.node, "start")
        yield* kill(zombie, "SIGSTOP")
        // This node takes over the queue; the rescuer hands it the orphaned jobs.
        yield* jobs.startQueue("chaos", 2)
        yield* runsOn(jobs.node, "start")
        yield* kill(zombie, "SIGCONT")
        // The zombie's handlers return and it writes their completions; then this node's.
        yield* runsOn(zombie.node, "end")
        yield* runsOn(jobs.node, "end")
        yield* Effect.repeat(Effect.all(ids.map((id) => jobs.get(id))), {
          until: (records) => records.every((j) => j.state === "completed"),
          schedule: Schedule.spaced("100 millis"),
        }).pipe(Effect.timeout("30 seconds"))
        yield* Effect.sleep("1 second")
        for (const id of ids) {
          const final = yield* jobs.get(id)
          expect(final.state).toBe("completed")
          expect(final.attemptedBy).toBe(jobs.node)
          expect(final.errors.map((e) => e.tag)).toEqual(["Rescued"])
        }
        expect((yield* jobs.get(withResult.id)).result).toEqual({ node: jobs.node, pid: process.pid })
        const ledger = yield* readLedger(sql, schema)
        for (const id of ids) {
          const runs = runsByJob(ledger).get(id)!.runs
          expect(runs.map((r) => [r.node, r.end !== undefined])).toEqual([
            [zombie.node, true],
            [jobs.node, true],
          ])
        }
        // The zombie's completions left no trace: one completion per job, written after this
        // node's handler returned.
        expect(ledgerViolations(ledger, (run) => run.node === zombie.node)).toEqual([])
        expect(isAlive(zombie)).toBe(true)
      }).pipe(Effect.scoped, Effect.provide(Db)),
    timeout,
  )

  it.live(
    "connection loss: workers whose connections are terminated again and again lose nothing, run nothing twice and leak nothing",
    () =>
      Effect.gen(function* () {
        const { sql, schema, jobs } = yield* setup()
        // At the short scale, jobs long enough (about 10 s of work for 16 workers) that several
        // termination rounds fall while they run, however fast the machine.
        const total = sized(800, 10_000)
        yield* jobs.insertMany(Chaos, work(total, sized(100, 5), sized(300, 30)))
        yield* Effect.all(Array.from({ length: 2 }, () => startWorker({ schema, concurrency: 8 })))
        const rounds = yield* Ref.make(0)
        const terminate = Effect.flatMap(
          sql.unsafe<{ terminated: boolean }>(
            `SELECT pg_terminate_backend(pid) AS terminated FROM pg_stat_activity
             WHERE application_name = 'effect-jobs-chaos'`,
          ),
          (rows) =>
            Effect.when(
              Ref.update(rounds, (n) => n + 1),
              () => rows.some((r) => r.terminated),
            ),
        )
        const result = yield* awaitOutcome(sql, schema, settled(total), timeout).pipe(
          Effect.raceFirst(
            Effect.forever(
              Effect.zipRight(Effect.sleep(sized("1500 millis", "2 seconds")), Effect.ignore(terminate)),
            ),
          ),
        )
        // Nothing ran twice but after a failure written for it (a broken connection may fail an attempt).
        const ledger = yield* readLedger(sql, schema)
        expect(ledgerViolations(ledger)).toEqual([])
        expect(result.states).toEqual({ completed: total })
        // The connections went away several times while the jobs ran, not once near the end.
        expect(yield* Ref.get(rounds)).toBeGreaterThanOrEqual(3)
        expect(completedInLedger(ledger)).toBe(total)
        const [connections] = yield* sql.unsafe<{ count: number }>(
          `SELECT count(*)::integer AS count FROM pg_stat_activity WHERE application_name = 'effect-jobs-chaos'`,
        )
        // Each worker: at most its pool of 6 and one LISTEN connection.
        expect(Number(connections!.count)).toBeLessThanOrEqual(2 * 7)
        // And each has listened again: a backend whose last statement was its LISTEN.
        yield* Effect.repeat(
          sql.unsafe<{ count: number }>(
            `SELECT count(*)::integer AS count FROM pg_stat_activity
             WHERE application_name = 'effect-jobs-chaos' AND query LIKE 'LISTEN %'`,
          ),
          { until: ([row]) => Number(row!.count) === 2, schedule: Schedule.spaced("250 millis") },
        ).pipe(Effect.timeout("30 seconds"))
      }).pipe(Effect.scoped, Effect.provide(Db)),
    timeout,
  )

  it.live(
    "graceful stop: SIGTERM with a hundred jobs in flight writes every finished outcome and gives the rest their attempts back",
    () =>
      Effect.gen(function* () {
        const { sql, schema, jobs } = yield* setup()
        yield* jobs.insertMany(Chaos, work(300, 500, 3_000))
        const worker = yield* startWorker({ schema, concurrency: 100, shutdownTimeout: "1 seconds" })
        const before = yield* awaitOutcome(sql, schema, (o) => (o.states.executing ?? 0) >= 100, 30_000)
        expect(before.states.executing).toBe(100)
        const stoppedAt = Date.now()
        yield* kill(worker, "SIGTERM")
        expect(yield* Effect.promise(() => worker.exited)).toBe(0)
        const rows = yield* sql.unsafe<{ id: string; state: string; attempt: number }>(
          `SELECT id, state, attempt FROM ${schema}.jobs`,
        )
        const runs = runsByJob(yield* readLedger(sql, schema))
        // A handler that returned well before the shutdown timeout (1 s) ran out has its
        // completion written. One whose last statement was under way as the runtime stopped
        // it may have returned or not: its run is either written or given back.
        const cutoff = stoppedAt + 1_000 - 250
        const seen = rows.map((row) => {
          const run = runs.get(Number(row.id))?.runs.at(-1)
          const handler =
            run === undefined
              ? "never ran"
              : run.end === undefined
                ? "interrupted"
                : run.end.at < cutoff
                  ? "returned"
                  : "returning as it was stopped"
          return `${handler}: ${row.state}, attempt ${row.attempt}`
        })
        const counts = Object.fromEntries(
          [...new Set(seen)].map((kind) => [kind, seen.filter((k) => k === kind).length]),
        )
        // The rest are available again with the attempt given back, whether they were
        // interrupted or never ran.
        const allowed = [
          "interrupted: available, attempt 0",
          "never ran: available, attempt 0",
          "returned: completed, attempt 1",
          "returning as it was stopped: completed, attempt 1",
          "returning as it was stopped: available, attempt 0",
        ]
        expect(Object.keys(counts).filter((kind) => !allowed.includes(kind))).toEqual([])
        expect(counts["interrupted: available, attempt 0"]).toBeGreaterThan(0)
        expect(rows).toHaveLength(300)
        expect(ledgerViolations(yield* readLedger(sql, schema))).toEqual([])
      }).pipe(Effect.scoped, Effect.provide(Db)),
    timeout,
  )

  it.live(
    "poison job: a job that kills its process is discarded after the rescue limit, and no bystander dies with it twice",
    () =>
      Effect.gen(function* () {
        const { sql, schema, jobs } = yield* setup()
        const total = sized(300, 1_000)
        const poison = yield* jobs.insert(Chaos, { n: -1, minMillis: 0, maxMillis: 0, poison: true })
        yield* jobs.insertMany(Chaos, work(total, 5, 20))
        const config: WorkerConfig = { schema, concurrency: 4, maxRescues: 3 }
        // A worker may claim the poison, and die of it, before it says it is ready.
        const poisoned = 3
        const workers: Array<Worker> = yield* Effect.all([
          startWorker(config, poisoned),
          startWorker(config, poisoned),
        ])
        const started = [...workers]
        const deadline = Date.now() + timeout - 10_000
        while (Date.now() < deadline) {
          // Settled: nothing left to run (so a bystander wrongly discarded ends the wait too).
          const { states } = yield* outcome(sql, schema)
          if ((states.completed ?? 0) + (states.discarded ?? 0) === total + 1) break
          // Whatever the poison killed comes back, as a supervisor would bring it back.
          for (let i = 0; i < workers.length; i++) {
            if (!isAlive(workers[i]!)) {
              workers[i] = yield* startWorker(config, poisoned)
              started.push(workers[i]!)
            }
          }
          yield* Effect.sleep("250 millis")
        }
        const final = yield* jobs.get(poison.id)
        expect(final.state).toBe("discarded")
        expect(final.errors.map((e) => e.tag)).toEqual(["Rescued", "Rescued", "Rescued"])
        expect((yield* outcome(sql, schema)).states.completed).toBe(total)
        const dead = new Set(started.filter((w) => !isAlive(w)).map((w) => w.child.pid))
        const ledger = yield* readLedger(sql, schema)
        expect(ledgerViolations(ledger, (run) => dead.has(run.start.pid))).toEqual([])
        expect(completedInLedger(ledger)).toBe(total)
        // The poison's rescues took some bystanders down with it once; never one twice.
        const twice = [...runsByJob(ledger)]
          .filter(([id]) => id !== poison.id)
          .filter(([, { runs }]) => runs.filter((r) => r.closedBy?.tag === "Rescued").length > 1)
          .map(([id]) => id)
        expect(twice).toEqual([])
      }).pipe(Effect.scoped, Effect.provide(Db)),
    timeout,
  )

  it.live(
    "leader killed: another node takes over leadership within three heartbeat intervals",
    () =>
      Effect.gen(function* () {
        const sql = yield* SqlClient
        const schema = freshSchema()
        yield* Effect.addFinalizer(() => dropSchema(sql, schema))
        // The worker starts first, migrates the schema and becomes the leader.
        const leader = yield* startWorker({ schema, heartbeatInterval: "1 seconds" })
        const other = yield* startJobs({ schema, queues: {}, handlers: [], heartbeatInterval: "1 second" })
        yield* Effect.repeat(other.leader, {
          until: (node) => node === leader.node,
          schedule: Schedule.spaced("100 millis"),
        })
        yield* kill(leader, "SIGKILL")
        const killedAt = Date.now()
        yield* Effect.repeat(other.leader, {
          until: (node) => node === other.node,
          schedule: Schedule.spaced("100 millis"),
        })
        expect(Date.now() - killedAt).toBeLessThanOrEqual(3_000)
      }).pipe(Effect.scoped, Effect.provide(Db)),
    timeout,
  )

  it.live(
    "unique race: fifty inserters across four nodes make exactly one job",
    () =>
      Effect.gen(function* () {
        const sql = yield* SqlClient
        const schema = freshSchema()
        yield* Effect.addFinalizer(() => dropSchema(sql, schema))
        const nodes = yield* Effect.all(
          Array.from({ length: 4 }, () => startJobs({ schema, queues: {}, handlers: [] })),
        )
        const results = yield* Effect.all(
          Array.from({ length: 50 }, (_, i) =>
            nodes[i % 4]!.insert(Chaos, { n: 1, minMillis: 0, maxMillis: 0 }, { unique: {} }),
          ),
          { concurrency: "unbounded" },
        )
        expect(new Set(results.map((r) => r.id)).size).toBe(1)
        expect(results.filter((r) => !r.conflict)).toHaveLength(1)
        const [rows] = yield* sql.unsafe<{ count: number }>(
          `SELECT count(*)::integer AS count FROM ${schema}.jobs`,
        )
        expect(Number(rows!.count)).toBe(1)
      }).pipe(Effect.scoped, Effect.provide(Db)),
    timeout,
  )

  databaseRestart()
})

/**
 * Crashes a PostgreSQL server of the test's own (the machine's is shared) while four
 * inserters and two workers use it.
 */
function databaseRestart() {
  const name =
    "database restart: an insert in flight when the server dies either fails or its jobs run to one completion"
  if (postgresBin === undefined && process.env.CI !== "true") {
    const reason = "no initdb/pg_ctl on this machine to run a PostgreSQL server of the test's own"
    process.stderr.write(`crash suite: "${name}" skipped: ${reason}\n`)
    vitest(name, (ctx) => ctx.skip(reason))
    return
  }
  it.live(
    name,
    () =>
      Effect.gen(function* () {
        const server = yield* privatePostgres(postgresBin ?? "(no initdb found)")
        yield* Effect.gen(function* () {
          const { sql, schema, jobs } = yield* setup()
          yield* Effect.all(
            Array.from({ length: 2 }, () => startWorker({ schema, concurrency: 16, url: server.url })),
          )
          // Each insert call marks its jobs with numbers of its own, to find them afterwards.
          const calls: Array<{ readonly ns: ReadonlyArray<number>; readonly ok: boolean }> = []
          const restartedAt: Array<number> = []
          let inserting = true
          const inserter = (k: number) =>
            Effect.gen(function* () {
              for (let call = 0; inserting; call++) {
                const ns = Array.from({ length: 5 }, (_, i) => k * 1_000_000 + call * 5 + i)
                const inserted = yield* Effect.either(
                  jobs.insertMany(
                    Chaos,
                    ns.map((n) => ({ n, minMillis: 5, maxMillis: 50 })),
                  ),
                )
                calls.push({ ns, ok: Either.isRight(inserted) })
                yield* Effect.sleep("50 millis")
              }
            })
          const restarts = Effect.gen(function* () {
            for (let round = 0; round < sized(1, 3); round++) {
              yield* Effect.sleep("1500 millis")
              yield* server.restart
              restartedAt.push(Date.now())
              yield* Effect.sleep("1500 millis")
            }
            inserting = false
          })
          yield* Effect.all([restarts, ...Array.from({ length: 4 }, (_, k) => inserter(k))], {
            concurrency: "unbounded",
          })
          const rows = () =>
            sql.unsafe<{ n: number; state: string; count: number }>(
              `SELECT (args ->> 'n')::integer AS n, min(state) AS state, count(*)::integer AS count
               FROM ${schema}.jobs GROUP BY 1`,
            )
          const deadline = Date.now() + timeout - 30_000
          let done = yield* rows().pipe(Effect.retry({ times: 20 }))
          while (!done.every((r) => r.state === "completed") && Date.now() < deadline) {
            yield* Effect.sleep("250 millis")
            done = yield* rows().pipe(Effect.retry({ times: 20 }))
          }
          const stored = new Map(done.map((r) => [Number(r.n), r]))
          // An insert that succeeded has each of its jobs stored once; one that failed, all
          // or none of them (one statement). Whatever is stored ran to a completion.
          const wrong = calls.flatMap(({ ns, ok }) => {
            const counts = ns.map((n) => Number(stored.get(n)?.count ?? 0))
            const fine = ok
              ? counts.every((c) => c === 1)
              : counts.every((c) => c === 0) || counts.every((c) => c === 1)
            return fine
              ? []
              : [`${ok ? "succeeded" : "failed"} insert of ${ns[0]}…: stored ${counts.join(",")} times`]
          })
          expect(wrong).toEqual([])
          expect(done.every((r) => r.state === "completed")).toBe(true)
          // The server died with inserts in flight: some of them failed.
          expect(calls.filter((c) => !c.ok).length).toBeGreaterThan(0)
          const ledger = yield* readLedger(sql, schema)
          // A run may be followed by another only if a crash came while it was open.
          expect(ledgerViolations(ledger, (run) => restartedAt.some((at) => at > run.start.at))).toEqual([])
          expect(completedInLedger(ledger)).toBe(done.length)
        }).pipe(Effect.provide(Layer.orDie(JobsPg.layer({ url: server.url, maxConnections: 8 }))))
      }).pipe(Effect.scoped),
    timeout,
  )
}
