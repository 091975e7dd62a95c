/**
 * effect-jobs: durable background jobs for Effect, on PostgreSQL or embedded PGlite.
 */
export * as Backoff from "./Backoff.js"
export * as Hook from "./Hook.js"
export * as Job from "./Job.js"
export * as JobError from "./JobError.js"
export * as JobEvent from "./JobEvent.js"
export * as JobFilter from "./JobFilter.js"
export * as JobRecord from "./JobRecord.js"
export * as Jobs from "./Jobs.js"
export * as JobsClient from "./JobsClient.js"
export * as JobsPg from "./JobsPg.js"
export * as JobsPglite from "./JobsPglite.js"
export * as Listener from "./Listener.js"
export * as Schedules from "./Schedules.js"
export * as Task from "./Task.js"
export * as Tasks from "./Tasks.js"
export * as Unique from "./Unique.js"
