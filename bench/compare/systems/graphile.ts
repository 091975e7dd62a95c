/**
 * graphile-worker, with its defaults and tuned as its own performance test tunes it. Its
 * schema is migrated in `open`; `start` calls `run()`. A completed job is deleted, so
 * completions are confirmed by the jobs table being empty. Per-job success logs are off
 * (NO_LOG_SUCCESS, set by the comparison for every child, as its own performance test does).
 */
import { Logger, makeWorkerUtils, type Runner, run, runMigrations, type WorkerUtils } from "graphile-worker"
import { benchPackageVersion, type OnJob, type Payload, pgUrl } from "../common.js"
import { deadTuples, query } from "../control.js"
import type { OpenOptions, System, SystemModule } from "./system.js"

const schema = "graphile_worker"

/** Warnings and errors only. */
const logger = new Logger(() => (level, message) => {
  if (level === "error" || level === "warning") console.error(`[graphile-worker] ${level}: ${message}`)
})

const make =
  (tuned: boolean) =>
  (options: OpenOptions): System => {
    const maxPoolSize = Math.min(
      options.maxPool ?? Number.POSITIVE_INFINITY,
      Math.max(10, options.concurrency + 2),
    )
    const batching = tuned
      ? { localQueue: { size: 500 }, completeJobBatchDelay: 0, failJobBatchDelay: 0 }
      : {}
    const worker = { connectionString: pgUrl, concurrentJobs: options.concurrency, maxPoolSize, ...batching }
    const settings = {
      preset: { worker: { ...worker, connectionString: "(bench database)" } },
      other: "every other option at its default (LISTEN wake-ups, pollInterval 2000 ms)",
    }
    let utils: WorkerUtils | undefined
    let runner: Runner | undefined
    let onJob: OnJob = () => {}
    return {
      settings,
      open: async () => {
        await runMigrations({ connectionString: pgUrl, logger })
        utils = await makeWorkerUtils({ connectionString: pgUrl, logger })
      },
      insertMany: async (jobs) => {
        await utils!.addJobs(jobs.map((payload) => ({ identifier: "noop", payload })))
      },
      insertOne: async (job) => {
        await utils!.addJob("noop", job)
      },
      start: async (handle) => {
        onJob = handle
        runner = await run({
          noHandleSignals: true,
          logger,
          taskList: {
            noop: async (payload) => {
              onJob(payload as Payload)
            },
          },
          preset: { worker },
        })
      },
      counts: async () => {
        const [row] = await query<{ pending: number; failed: number }>(
          `SELECT count(*) FILTER (WHERE attempts < max_attempts)::int AS pending,
                  count(*) FILTER (WHERE attempts >= max_attempts)::int AS failed
             FROM ${schema}._private_jobs`,
        )
        return { pending: row!.pending, completed: null, failed: row!.failed }
      },
      close: async () => {
        await runner?.stop()
        await utils?.release()
        return deadTuples(schema, "_private_jobs")
      },
    }
  }

const versions = async () => ({ "graphile-worker": benchPackageVersion("graphile-worker") })

export const defaults: SystemModule = { make: make(false), versions }
export const tuned: SystemModule = { make: make(true), versions }
