/**
 * Child processes: every run is a process of its own, given its spec in the environment,
 * answering with one `result` message over IPC. Imports nothing outside Node. Compiled (as
 * bench:compare runs it, from bench/compare-js), a child runs plain Node, so that no system's
 * speed or RSS includes a TypeScript loader; from the sources, it runs under tsx.
 */
import { type ChildProcess, fork } from "node:child_process"
import { readFileSync } from "node:fs"
import { fileURLToPath } from "node:url"

export const repoRoot = fileURLToPath(new URL("../../", import.meta.url))
const compiled = import.meta.url.endsWith(".js")
const childEntry = fileURLToPath(new URL(compiled ? "./child.js" : "./child.ts", import.meta.url))

/** Messages between a parent and its child. */
export type Message =
  | { readonly type: "result"; readonly result: unknown }
  | { readonly type: "error"; readonly message: string }
  | { readonly type: "ready" }
  | { readonly type: "go" }
  | { readonly type: "stop" }
  | { readonly type: "handled"; readonly count: number }
  | { readonly type: "insert"; readonly n: number }
  | { readonly type: "ping" }
  | { readonly type: "pong"; readonly t: number }

/**
 * Node flags for every child, for looking inside a run (`BENCH_NODE_ARGS="--trace-gc-nvp"`);
 * Node refuses such V8 flags in NODE_OPTIONS.
 */
const extraNodeArgs = (process.env.BENCH_NODE_ARGS ?? "").split(" ").filter(Boolean)

/** Starts `child.ts` with a spec; the caller talks to it over IPC. */
export const spawnChild = (spec: unknown): ChildProcess =>
  fork(childEntry, [], {
    cwd: repoRoot,
    execArgv: [...(compiled ? [] : ["--import", "tsx"]), ...extraNodeArgs],
    env: { ...process.env, BENCH_SPEC: JSON.stringify(spec), NO_LOG_SUCCESS: "1" },
    stdio: ["ignore", "inherit", "inherit", "ipc"],
  })

/** Waits for the first message of a type, failing on an error message, an early exit or the time limit. */
export const waitFor = <T extends Message["type"]>(
  child: ChildProcess,
  type: T,
  timeoutMs: number,
): Promise<Extract<Message, { type: T }>> =>
  new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      cleanup()
      reject(new Error(`no "${type}" message within ${Math.round(timeoutMs / 1000)} s`))
    }, timeoutMs)
    const onMessage = (message: Message) => {
      if (message.type === type) {
        cleanup()
        resolve(message as Extract<Message, { type: T }>)
      } else if (message.type === "error") {
        cleanup()
        reject(new Error(message.message))
      }
    }
    const onExit = (code: number | null, signal: string | null) => {
      cleanup()
      reject(new Error(`child exited (${signal ?? `code ${code}`}) before sending "${type}"`))
    }
    const cleanup = () => {
      clearTimeout(timer)
      child.off("message", onMessage)
      child.off("exit", onExit)
    }
    child.on("message", onMessage)
    child.on("exit", onExit)
  })

/** Waits for a child to exit, killing it (by its own pid) after `graceMs`. */
export const reap = (child: ChildProcess, graceMs = 30_000): Promise<void> =>
  new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve()
    const timer = setTimeout(() => child.kill("SIGKILL"), graceMs)
    child.once("exit", () => {
      clearTimeout(timer)
      resolve()
    })
  })

/** Runs one spec in a child process and returns its result; a child that fails or overruns is killed. */
export const runInChild = async <A>(spec: unknown, timeoutMs: number): Promise<A> => {
  const child = spawnChild(spec)
  try {
    const { result } = await waitFor(child, "result", timeoutMs)
    await reap(child)
    return result as A
  } catch (error) {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL")
    await reap(child)
    throw error
  }
}

/** Busy and total jiffies of the whole machine, from /proc/stat (zeros where unavailable). */
export const machineCpu = (): { busy: number; total: number } => {
  try {
    const line = readFileSync("/proc/stat", "utf8").split("\n")[0]!
    const fields = line.trim().split(/\s+/).slice(1).map(Number)
    const idle = (fields[3] ?? 0) + (fields[4] ?? 0)
    const total = fields.reduce((sum, x) => sum + x, 0)
    return { busy: total - idle, total }
  } catch {
    return { busy: 0, total: 0 }
  }
}

/** How busy the machine was between two readings, in percent of one core (200 = both cores of two). */
export const machineCpuPercent = (
  before: { busy: number; total: number },
  after: { busy: number; total: number },
  cores: number,
): number => {
  const total = after.total - before.total
  return total > 0 ? Math.round(((after.busy - before.busy) / total) * cores * 100) : 0
}
