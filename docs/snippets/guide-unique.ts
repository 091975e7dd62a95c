import { Effect, Schema } from "effect"
import { Job, Jobs, Unique } from "effect-jobs"

// One sync per account, whatever `full` says, until that job is cancelled, discarded or
// pruned (the default states: a completed sync still blocks the key).
export const SyncAccount = Job.make("sync-account", {
  args: Schema.Struct({ accountId: Schema.String, full: Schema.Boolean }),
  unique: { by: ["accountId"] },
})

// At most one digest per user per clock hour, and only while one is pending or running:
// once it has finished, the next insert makes a new job, even within the same hour.
export const Digest = Job.make("digest", {
  args: Schema.Struct({ userId: Schema.Number }),
  unique: { period: "1 hour", states: Unique.requiredStates },
})

const Ping = Job.make("ping", { args: Schema.Struct({ host: Schema.String }) })

export const program = Effect.gen(function* () {
  const jobs = yield* Jobs.Jobs

  const first = yield* jobs.insert(SyncAccount, { accountId: "acme", full: false })
  const again = yield* jobs.insert(SyncAccount, { accountId: "acme", full: true })
  // again.conflict is true and again is the first job, as stored: nothing new was written.
  yield* Effect.log(`${first.id} = ${again.id}, conflict: ${again.conflict}`)

  // A type that is not unique by definition can be made unique for one insert.
  yield* jobs.insert(Ping, { host: "db-1" }, { unique: { period: "5 minutes" } })

  // One job per key, duplicates within the batch included, in the order given.
  const batch = yield* jobs.insertMany(SyncAccount, [
    { accountId: "acme", full: false }, // conflict: the job inserted above
    { accountId: "globex", full: false }, // new
    { accountId: "globex", full: true }, // conflict: the job on the line above
  ])
  yield* Effect.log(`${batch.filter((job) => !job.conflict).length} new job(s)`)
})
