import { NodeRuntime } from "@effect/platform-node"
import { Effect, Layer } from "effect"
import { JobsClient, JobsPg } from "effect-jobs"
import * as Dashboard from "effect-jobs/dashboard"

// Standalone, on http://127.0.0.1:4000 (this machine only), behind a password.
const DashboardLive = Dashboard.layer({
  port: 4000,
  basicAuth: { username: "ops", password: process.env.DASHBOARD_PASSWORD ?? "change me" },
  // Who may do what: "full", "read-only" or "forbidden", per request.
  access: (request) => Effect.succeed(request.headers["x-ops-role"] === "viewer" ? "read-only" : "full"),
}).pipe(
  Layer.provide(JobsClient.layer()),
  Layer.provide(JobsPg.layer({ url: "postgres://app@127.0.0.1:5432/app" })),
)

Layer.launch(DashboardLive).pipe(NodeRuntime.runMain)
