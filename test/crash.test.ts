/**
 * A real process killed with SIGKILL while running a job: the job is not lost.
 */
import { spawn } from "node:child_process"
import { join } from "node:path"
import { SqlClient } from "@effect/sql/SqlClient"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Schema } from "effect"
import * as Job from "../src/Job.js"
import * as JobsPg from "../src/JobsPg.js"
import { dropSchema, freshSchema, postgresAvailable, postgresUrl } from "./support/engines.js"
import { awaitState, startJobs } from "./support/jobs.js"

const Hang = Job.make("hang", { args: Schema.Struct({}) })

/** Starts the worker and answers once its handler has started the given job. */
const startWorker = (schema: string) =>
  Effect.acquireRelease(
    Effect.async<{ readonly kill: () => void }, Error>((resume) => {
      const child = spawn(
        process.execPath,
        ["--import", "tsx", join(import.meta.dirname, "support", "crashingWorker.ts"), postgresUrl, schema],
        { stdio: ["ignore", "pipe", "inherit"] },
      )
      child.stdout.on("data", (chunk: Buffer) => {
        if (chunk.toString().includes("started"))
          resume(Effect.succeed({ kill: () => child.kill("SIGKILL") }))
      })
      child.once("exit", (code) => resume(Effect.fail(new Error(`worker exited early with ${code}`))))
    }),
    (worker) => Effect.sync(() => worker.kill()),
  )

describe.runIf(postgresAvailable)("a worker killed mid-job", () => {
  it.live(
    "leaves no job behind: another node rescues it and runs it",
    () =>
      Effect.gen(function* () {
        const sql = yield* SqlClient
        const schema = freshSchema()
        yield* Effect.addFinalizer(() => dropSchema(sql, schema))
        // This node inserts and, for now, runs nothing.
        const jobs = yield* startJobs({
          schema,
          queues: {},
          handlers: [Hang.handler(() => Effect.void)],
          heartbeatInterval: "100 millis",
          nodeTimeout: "1 second",
        })
        const job = yield* jobs.insert(Hang, {})
        const worker = yield* startWorker(schema)
        expect((yield* jobs.get(job.id)).state).toBe("executing")
        worker.kill()
        yield* jobs.startQueue("default", 1)
        const done = yield* awaitState(jobs, job.id, "completed", "20 seconds")
        expect(done.errors.map((e) => e.tag)).toEqual(["Rescued"])
        expect(done.attemptedBy).toBe(jobs.node)
      }).pipe(Effect.scoped, Effect.provide(JobsPg.layer({ url: postgresUrl }))),
    60_000,
  )
})
