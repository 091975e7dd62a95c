import { Schema } from "effect"
import { Job } from "effect-jobs"

// One sync per account per clock hour: a second insert within the hour writes nothing and
// returns the first job, with `conflict: true` (unless that one was cancelled or discarded).
export const SyncAccount = Job.make("sync-account", {
  args: Schema.Struct({ accountId: Schema.String, full: Schema.Boolean }),
  unique: { by: ["accountId"], period: "1 hour" },
})
