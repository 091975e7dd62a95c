/**
 * The entry of every child process: reads its spec from BENCH_SPEC, runs it, and sends the
 * result to its parent over IPC. A child whose parent goes away exits.
 */
import { now } from "./common.js"
import { closeControl, ensureDatabase, resetStores, serverInfo } from "./control.js"
import type { Message } from "./proc.js"
import { systems } from "./systems/system.js"
import { runSpec, type Spec } from "./workloads.js"

type ChildSpec = Spec | { readonly kind: "info" } | { readonly kind: "cleanup" }

const send = (message: Message): Promise<void> =>
  new Promise((resolve) => {
    if (!process.send) {
      // Started by hand, for debugging: print instead.
      console.log(JSON.stringify(message, null, 2))
      return resolve()
    }
    process.send(message, undefined, {}, () => resolve())
  })

const info = async () => {
  await ensureDatabase()
  const versions: Record<string, string> = {}
  for (const system of systems) Object.assign(versions, await (await system.load()).versions())
  const bullmq = (await import("bullmq")) as Record<string, unknown>
  return {
    server: await serverInfo(),
    versions,
    bullmq_postgres_backend: typeof bullmq.createPostgresBackend === "function",
  }
}

const main = async () => {
  const spec = JSON.parse(process.env.BENCH_SPEC ?? "null") as ChildSpec | null
  if (!spec) throw new Error("BENCH_SPEC is missing: this file is started by bench/compare/main.ts")
  switch (spec.kind) {
    case "info":
      return info()
    case "cleanup":
      await resetStores({ postgres: true, redis: true })
      return {}
    default:
      return runSpec(spec)
  }
}

process.on("disconnect", () => process.exit(2))
// Answers the parent's clock comparisons (see clockOffset in workloads.ts).
process.on("message", (message: Message) => {
  if (message.type === "ping") process.send?.({ type: "pong", t: now() } satisfies Message)
})

main().then(
  async (result) => {
    await closeControl().catch(() => undefined)
    await send({ type: "result", result })
    process.exit(0)
  },
  async (error: unknown) => {
    console.error(error)
    await closeControl().catch(() => undefined)
    await send({ type: "error", message: error instanceof Error ? error.message : String(error) })
    process.exit(1)
  },
)
