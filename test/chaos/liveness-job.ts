import { Schema } from "effect"
import * as Job from "../../src/Job.js"

/**
 * The liveness scenarios' job: holds one of the app's connections (a transaction) for
 * `millis`, recording its start and end in the `runs` table through a connection of its own.
 */
export const Hold = Job.make("hold", {
  args: Schema.Struct({ n: Schema.Number, millis: Schema.Number }),
  queue: "hold",
  maxAttempts: 25,
  backoff: "100 millis",
})

export const createRuns = (schema: string) =>
  `CREATE TABLE ${schema}.runs (job_id bigint NOT NULL, attempt integer NOT NULL, node text NOT NULL,
     pid integer NOT NULL, phase text NOT NULL, at timestamptz NOT NULL DEFAULT clock_timestamp())`
