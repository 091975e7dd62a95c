/**
 * The crash suite: real processes, real kills, real PostgreSQL. Every attempt writes a
 * ledger row first, so the checks prove what ran where. `npm test` runs the short scale,
 * after (never beside) the other test files; `npm run test:chaos` the full one (see
 * docs/reliability.md).
 */
import { SqlClient } from "@effect/sql/SqlClient"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Layer, Random, Schedule } from "effect"
import * as JobsPg from "../../src/JobsPg.js"
import { dropSchema, freshSchema, postgresAvailable, postgresUrl } from "../support/engines.js"
import { startJobs } from "../support/jobs.js"
import {
  awaitOutcome,
  createLedger,
  isAlive,
  kill,
  outcome,
  restartPostgres,
  sized,
  startWorker,
  type Worker,
  type WorkerConfig,
} from "./harness.js"
import { Chaos } from "./job.js"

const Db = JobsPg.layer({ url: postgresUrl, maxConnections: 8 })

/** A schema with a ledger, and a node in this process that inserts (and runs nothing unless asked). */
const setup = (queues: Record<string, number> = {}) =>
  Effect.gen(function* () {
    const sql = yield* SqlClient
    const schema = freshSchema()
    yield* Effect.addFinalizer(() => dropSchema(sql, schema))
    const jobs = yield* startJobs({
      schema,
      queues,
      // This node runs jobs only when a test starts its queue; then it keeps the ledger too.
      handlers: [
        Chaos.handler(({ job }) =>
          Effect.zipRight(
            sql.unsafe(`INSERT INTO ${schema}.ledger (job_id, attempt, node, pid) VALUES ($1, $2, $3, $4)`, [
              job.id,
              job.attempt,
              job.attemptedBy,
              process.pid,
            ]),
            Effect.sleep("10 millis"),
          ),
        ),
      ],
      heartbeatInterval: "500 millis",
      nodeTimeout: "3 seconds",
    })
    yield* createLedger(sql, schema)
    return { sql, schema, jobs }
  })

const work = (count: number, minMillis: number, maxMillis: number) =>
  Array.from({ length: count }, (_, n) => ({ n, minMillis, maxMillis }))

const timeout = sized(180_000, 900_000)

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
        const result = yield* awaitOutcome(sql, schema, (o) => o.states.completed === total, timeout)
        expect(result.states).toEqual({ completed: total })
        expect(result.ledgerJobs).toBe(total)
        expect(result.repeated).toEqual([])
      }).pipe(Effect.scoped, Effect.provide(Db)),
    timeout,
  )

  it.live(
    "random SIGKILL: nothing is lost, and only jobs running on a killed process run again",
    () =>
      Effect.gen(function* () {
        const { sql, schema, jobs } = yield* setup()
        const total = sized(600, 20_000)
        yield* jobs.insertMany(Chaos, work(total, sized(20, 50), sized(100, 500)))
        const config: WorkerConfig = { schema, concurrency: 16 }
        const workers: Array<Worker> = yield* Effect.all(Array.from({ length: 4 }, () => startWorker(config)))
        const killed = new Set<string>()
        const until = Date.now() + sized(20_000, 180_000)
        while (Date.now() < until) {
          yield* Effect.sleep(sized(2_000, 5_000) + (yield* Random.nextIntBetween(0, sized(2_000, 10_000))))
          const index = yield* Random.nextIntBetween(0, workers.length)
          killed.add(workers[index]!.node)
          yield* kill(workers[index]!, "SIGKILL")
          workers[index] = yield* startWorker(config)
        }
        const result = yield* awaitOutcome(sql, schema, (o) => o.states.completed === total, timeout)
        expect(result.states).toEqual({ completed: total })
        expect(result.ledgerJobs).toBe(total)
        // A job ran more than once only because every run but the last was on a killed process.
        for (const { nodes } of result.repeated) {
          for (const node of nodes.slice(0, -1)) expect(killed.has(node)).toBe(true)
        }
      }).pipe(Effect.scoped, Effect.provide(Db)),
    timeout,
  )

  it.live(
    "zombie: a worker frozen past the rescue time cannot complete the job it lost",
    () =>
      Effect.gen(function* () {
        const { sql, schema, jobs } = yield* setup()
        const zombie = yield* startWorker({ schema, concurrency: 1 })
        const job = yield* jobs.insert(Chaos, { n: 0, minMillis: 3_000, maxMillis: 3_000 })
        yield* awaitOutcome(sql, schema, (o) => o.ledgerJobs === 1, 20_000)
        yield* kill(zombie, "SIGSTOP")
        // This node takes over the queue; the rescuer hands it the orphaned job.
        yield* jobs.startQueue("chaos", 1)
        yield* Effect.repeat(jobs.get(job.id), {
          until: (j) => j.state === "completed",
          schedule: Schedule.spaced("250 millis"),
        })
        yield* kill(zombie, "SIGCONT")
        // The zombie finishes its 3 s sleep and tries to complete: the lease says no.
        yield* Effect.sleep("4 seconds")
        const final = yield* jobs.get(job.id)
        expect(final.state).toBe("completed")
        expect(final.attemptedBy).toBe(jobs.node)
        expect(final.errors.map((e) => e.tag)).toEqual(["Rescued"])
        const runs = yield* sql.unsafe<{ node: string }>(`SELECT node FROM ${schema}.ledger ORDER BY at`)
        expect(runs.map((r) => r.node)).toEqual([zombie.node, jobs.node])
        expect(isAlive(zombie)).toBe(true)
      }).pipe(Effect.scoped, Effect.provide(Db)),
    timeout,
  )

  it.live(
    "connection loss: workers whose connections are terminated lose nothing and leak nothing",
    () =>
      Effect.gen(function* () {
        const { sql, schema, jobs } = yield* setup()
        const total = sized(1_000, 10_000)
        yield* jobs.insertMany(Chaos, work(total, 5, 30))
        yield* Effect.all(Array.from({ length: 2 }, () => startWorker({ schema, concurrency: 8 })))
        const terminate = sql.unsafe(
          `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'effect-jobs-chaos'`,
        )
        const result = yield* awaitOutcome(sql, schema, (o) => o.states.completed === total, timeout).pipe(
          Effect.raceFirst(
            Effect.forever(
              Effect.zipRight(Effect.sleep(sized("1 second", "10 seconds")), Effect.ignore(terminate)),
            ),
          ),
        )
        expect(result.states).toEqual({ completed: total })
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
    "graceful stop: SIGTERM with a hundred jobs in flight leaves none executing",
    () =>
      Effect.gen(function* () {
        const { sql, schema, jobs } = yield* setup()
        yield* jobs.insertMany(Chaos, work(300, 500, 3_000))
        const worker = yield* startWorker({ schema, concurrency: 100, shutdownTimeout: "1 seconds" })
        yield* awaitOutcome(sql, schema, (o) => (o.states.executing ?? 0) >= 100, 30_000)
        yield* kill(worker, "SIGTERM")
        expect(yield* Effect.promise(() => worker.exited)).toBe(0)
        const [left] = yield* sql.unsafe<{ count: number }>(
          `SELECT count(*)::integer AS count FROM ${schema}.jobs WHERE state = 'executing'`,
        )
        expect(Number(left!.count)).toBe(0)
        const result = yield* outcome(sql, schema)
        expect((result.states.completed ?? 0) + (result.states.available ?? 0)).toBe(300)
      }).pipe(Effect.scoped, Effect.provide(Db)),
    timeout,
  )

  it.live(
    "poison job: a job that kills its process is discarded after the rescue limit while the rest complete",
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
        const deadline = Date.now() + timeout - 10_000
        while (Date.now() < deadline) {
          const current = yield* jobs.get(poison.id)
          const rest = yield* outcome(sql, schema)
          if (current.state === "discarded" && rest.states.completed === total) break
          // Whatever the poison killed comes back, as a supervisor would bring it back.
          for (let i = 0; i < workers.length; i++) {
            if (!isAlive(workers[i]!)) workers[i] = yield* startWorker(config, poisoned)
          }
          yield* Effect.sleep("250 millis")
        }
        const final = yield* jobs.get(poison.id)
        expect(final.state).toBe("discarded")
        expect(final.errors.map((e) => e.tag)).toEqual(["Rescued", "Rescued", "Rescued"])
        expect((yield* outcome(sql, schema)).states.completed).toBe(total)
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
      }).pipe(Effect.scoped, Effect.provide(Db)),
    timeout,
  )

  // Runs in its own vitest invocation after the other test files (see package.json), since
  // restarting PostgreSQL would break whatever else is using it.
  it.live(
    "database restart: every committed insert survives an immediate restart and runs",
    () =>
      Effect.gen(function* () {
        const { sql, schema, jobs } = yield* setup()
        yield* Effect.all(Array.from({ length: 2 }, () => startWorker({ schema, concurrency: 16 })))
        let committed = 0
        for (let round = 0; round < 2; round++) {
          for (let i = 0; i < sized(5, 20); i++) {
            const inserted = yield* Effect.either(jobs.insertMany(Chaos, work(100, 5, 50)))
            if (inserted._tag === "Right") committed += 100
          }
          yield* restartPostgres
          yield* Effect.sleep("3 seconds")
        }
        const result = yield* awaitOutcome(sql, schema, (o) => o.states.completed === committed, timeout)
        expect(result.states.completed).toBe(committed)
      }).pipe(Effect.scoped, Effect.provide(Layer.orDie(Db))),
    timeout,
  )
})
