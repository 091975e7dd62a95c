/**
 * One trace from an HTTP request to the job it enqueues, run by another runtime:
 * `DATABASE_URL=postgres://… npx tsx examples/opentelemetry.ts`
 *
 * Two runtimes share one PostgreSQL database, as a web process and a worker process would: the
 * web runtime serves `POST /signup`, which inserts a job through `JobsClient` inside the
 * request's span; the insert stores the span's W3C trace context with the job. The worker
 * runtime runs the job in a `process welcome` span linked to that insert. Both print their
 * spans to the console: the worker's span lists the web's trace id among its links.
 */

import { createServer } from "node:http"
import * as NodeSdk from "@effect/opentelemetry/NodeSdk"
import { HttpMiddleware, HttpRouter, HttpServer, HttpServerResponse } from "@effect/platform"
import * as NodeHttpServer from "@effect/platform-node/NodeHttpServer"
import { ConsoleSpanExporter, SimpleSpanProcessor } from "@opentelemetry/sdk-trace-base"
import { Console, Effect, Layer, ManagedRuntime, Schema } from "effect"
import { Job, Jobs, JobsClient, JobsPg } from "effect-jobs"

const url = process.env.DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/postgres"
const schema = "otel_example"

const Welcome = Job.make("send-welcome", {
  args: Schema.Struct({ email: Schema.String }),
  queue: "welcome",
})

// The handler's own spans are children of the attempt's `process welcome` span.
const welcome = Welcome.handler(({ args }) =>
  Console.log(`worker: welcome mail sent to ${args.email}`).pipe(Effect.withSpan("send mail")),
)

const tracing = (serviceName: string) =>
  NodeSdk.layer(() => ({
    resource: { serviceName },
    spanProcessor: new SimpleSpanProcessor(new ConsoleSpanExporter()),
  }))

// The worker runtime runs jobs; the span of each attempt is made because a tracer is installed.
const worker = ManagedRuntime.make(
  Jobs.layer({ handlers: [welcome], queues: { welcome: 5 }, schema }).pipe(
    Layer.provide(JobsPg.layer({ url })),
    Layer.provide(tracing("worker")),
  ),
)

// The web runtime only inserts: a `JobsClient` joins no cluster.
const router = HttpRouter.empty.pipe(
  HttpRouter.post(
    "/signup",
    Effect.gen(function* () {
      const jobs = yield* JobsClient.JobsClient
      const job = yield* jobs.insert(Welcome, { email: "ada@example.com" })
      return yield* HttpServerResponse.json({ job: job.id, traceparent: job.meta.traceparent })
    }),
  ),
)
// `serve` traces each request: the insert's span is a child of the request's span.
const web = ManagedRuntime.make(
  HttpServer.serve(router, HttpMiddleware.logger).pipe(
    Layer.provideMerge(NodeHttpServer.layer(createServer, { port: 0 })),
    Layer.provide(JobsClient.layer({ schema }).pipe(Layer.provide(JobsPg.layer({ url })))),
    Layer.provide(tracing("web")),
  ),
)

const main = async () => {
  try {
    // The worker first: it creates the schema the client checks.
    await worker.runPromise(Jobs.Jobs)
    const address = await web.runPromise(Effect.map(HttpServer.HttpServer, (server) => server.address))
    const port = address._tag === "TcpAddress" ? address.port : 0
    const response = await fetch(`http://127.0.0.1:${port}/signup`, { method: "POST" })
    const { job, traceparent } = (await response.json()) as { job: number; traceparent: string }
    console.log(`web: inserted job ${job} with traceparent ${traceparent}`)
    await worker.runPromise(
      Effect.gen(function* () {
        const jobs = yield* Jobs.Jobs
        while ((yield* jobs.get(job)).state !== "completed") yield* Effect.sleep("50 millis")
      }),
    )
  } finally {
    await web.dispose()
    await worker.dispose()
  }
}

main().catch((error) => {
  console.error(error)
  process.exitCode = 1
})
