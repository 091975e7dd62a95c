/**
 * A PGlite data directory has one opener at a time: a second process, or a second layer of
 * this one, fails at once with `DataDirLocked` naming the holder, and a lock left by a process
 * killed with SIGKILL does not block the next start. The holder is a real child process.
 */
import { type ChildProcess, spawn } from "node:child_process"
import * as NodeFs from "node:fs/promises"
import * as NodeOs from "node:os"
import * as NodePath from "node:path"
import { SqlClient } from "@effect/sql/SqlClient"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Exit, Layer, Scope } from "effect"
import { lockFileName } from "../../src/internal/engines/dataDirLock.js"
import { DataDirLocked } from "../../src/JobError.js"
import * as JobsPglite from "../../src/JobsPglite.js"
import { bundled } from "../support/bundles.js"

const temporaryDirectory = Effect.acquireRelease(
  Effect.promise(() => NodeFs.mkdtemp(NodePath.join(NodeOs.tmpdir(), "effect-jobs-lock-"))),
  (directory) => Effect.promise(() => NodeFs.rm(directory, { recursive: true, force: true })),
)

interface Holder {
  readonly child: ChildProcess
  readonly exited: Promise<unknown>
}

/** A child process holding `dataDir` open; killed with SIGKILL when the scope closes, if still alive. */
const holdInChild = (dataDir: string) =>
  Effect.acquireRelease(
    Effect.async<Holder, Error>((resume) => {
      const child = spawn(process.execPath, [bundled("holdDataDir"), dataDir], {
        stdio: ["ignore", "pipe", "pipe"],
      })
      const exited = new Promise((done) => child.once("exit", done))
      let output = ""
      child.stderr.on("data", (chunk: Buffer) => {
        output += chunk.toString()
      })
      child.stdout.on("data", (chunk: Buffer) => {
        if (chunk.toString().includes("ready")) resume(Effect.succeed({ child, exited }))
      })
      exited.then((code) => resume(Effect.fail(new Error(`holder exited with ${code}: ${output}`))))
    }),
    ({ child, exited }) =>
      Effect.promise(() => {
        if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL")
        return exited
      }),
  )

/** Opens the directory in a scope of its own, answering the rows the holders wrote. */
const openAndRead = (dataDir: string) =>
  Effect.scoped(
    Effect.gen(function* () {
      const context = yield* Layer.build(JobsPglite.layer({ dataDir }))
      const sql = yield* Effect.provide(SqlClient, context)
      return yield* sql<{ pid: number }>`SELECT pid FROM written ORDER BY pid`
    }),
  )

const lockExists = (dataDir: string) =>
  Effect.promise(() =>
    NodeFs.access(NodePath.join(dataDir, lockFileName)).then(
      () => true,
      () => false,
    ),
  )

// Creating a PGlite database on disk takes seconds, and much longer on a busy machine.
const timeout = 240_000

describe("a PGlite data directory is locked", () => {
  it.scoped(
    "a second process fails at once with DataDirLocked naming the holder, and opens it once the holder is killed",
    () =>
      Effect.gen(function* () {
        const dataDir = yield* temporaryDirectory
        const holder = yield* holdInChild(dataDir)
        const error = yield* Effect.flip(openAndRead(dataDir))
        expect(error._tag).toBe("DataDirLocked")
        const locked = error as DataDirLocked
        expect(locked.pid).toBe(holder.child.pid)
        expect(locked.host).toBe(NodeOs.hostname())
        expect(locked.since.getTime()).toBeLessThanOrEqual(Date.now())
        expect(locked.message).toContain(`process ${holder.child.pid}`)

        // SIGKILL: no finalizer runs, the lock file stays behind.
        holder.child.kill("SIGKILL")
        yield* Effect.promise(() => holder.exited)
        expect(yield* lockExists(dataDir)).toBe(true)
        const rows = yield* openAndRead(dataDir)
        expect(rows.map((row) => row.pid)).toEqual([holder.child.pid])
        // Released when the layer closed.
        expect(yield* lockExists(dataDir)).toBe(false)
      }),
    timeout,
  )

  it.scoped(
    "a second layer in this process fails the same way until the first closes",
    () =>
      Effect.gen(function* () {
        const dataDir = yield* temporaryDirectory
        const firstScope = yield* Scope.make()
        yield* Layer.buildWithScope(JobsPglite.layer({ dataDir }), firstScope)
        const exit = yield* Effect.exit(Effect.scoped(Layer.build(JobsPglite.layer({ dataDir }))))
        expect(Exit.isFailure(exit)).toBe(true)
        const error = yield* Effect.flip(Effect.scoped(Layer.build(JobsPglite.layer({ dataDir }))))
        expect(error).toBeInstanceOf(DataDirLocked)
        expect((error as DataDirLocked).pid).toBe(process.pid)
        // The same directory by another path is the same directory.
        const other = yield* Effect.flip(
          Effect.scoped(
            Layer.build(
              JobsPglite.layer({ dataDir: NodePath.join(dataDir, "..", NodePath.basename(dataDir)) }),
            ),
          ),
        )
        expect(other._tag).toBe("DataDirLocked")
        yield* Scope.close(firstScope, Exit.void)
        yield* Effect.scoped(Layer.build(JobsPglite.layer({ dataDir })))
      }),
    timeout,
  )

  it.scoped(
    "a lock from another host holds, and an unreadable one is replaced",
    () =>
      Effect.gen(function* () {
        const dataDir = yield* temporaryDirectory
        const lockPath = NodePath.join(dataDir, lockFileName)
        const since = "2026-01-02T03:04:05.000Z"
        yield* Effect.promise(() =>
          NodeFs.writeFile(
            lockPath,
            JSON.stringify({ pid: 4242, host: "elsewhere", boot: null, since, token: "t" }),
          ),
        )
        const error = yield* Effect.flip(Effect.scoped(Layer.build(JobsPglite.layer({ dataDir }))))
        expect(error).toEqual(
          new DataDirLocked({ dataDir, pid: 4242, host: "elsewhere", since: new Date(since) }),
        )
        yield* Effect.promise(() => NodeFs.writeFile(lockPath, "not json"))
        yield* Effect.scoped(Layer.build(JobsPglite.layer({ dataDir })))
      }),
    timeout,
  )
})
