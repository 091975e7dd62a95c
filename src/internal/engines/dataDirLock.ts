/**
 * One opener at a time for a PGlite data directory. PGlite is a single session with no lock
 * of its own: a second process opening the same directory runs a second database on the same
 * files, and each overwrites what the other wrote.
 *
 * The lock is a file in the directory holding who took it (pid, host, boot, time). It comes
 * into being whole: written to a file of its own, then hard-linked into place, which fails if
 * the lock exists. A lock whose process is gone (killed with SIGKILL, say) is stale and taken
 * over; a process cannot tell that of another host, so a lock from another host holds.
 * Layers in this process are tracked in memory as well, since their pid is alive.
 */
import { randomUUID } from "node:crypto"
import { readFileSync } from "node:fs"
import * as NodeFs from "node:fs/promises"
import { hostname } from "node:os"
import * as NodePath from "node:path"
import { SqlError } from "@effect/sql/SqlError"
import { Clock, Effect, Either, Option, Schema, type Scope } from "effect"
import { globalValue } from "effect/GlobalValue"
import { DataDirLocked } from "../../JobError.js"

export const lockFileName = "effect-jobs.lock"

const Holder = Schema.Struct({
  pid: Schema.Number,
  host: Schema.String,
  /** The kernel's boot id, where there is one: after a reboot no pid of before is alive. */
  boot: Schema.NullOr(Schema.String),
  since: Schema.Date,
  /** Tells this lock from a later one of the same process, so a release removes only its own. */
  token: Schema.String,
})
type Holder = typeof Holder.Type

const HolderJson = Schema.parseJson(Holder)
const decodeHolder = Schema.decodeUnknownOption(HolderJson)
const encodeHolder = Schema.encodeSync(HolderJson)

const bootId = (() => {
  try {
    return readFileSync("/proc/sys/kernel/random/boot_id", "utf8").trim()
  } catch {
    return null
  }
})()

// Shared through the global object, so two copies of the library in one process see each other.
const heldHere = globalValue(Symbol.for("effect-jobs/pgliteDataDirLocks"), () => new Map<string, Holder>())

const lockedBy = (dataDir: string, holder: Holder) =>
  new DataDirLocked({ dataDir, pid: holder.pid, host: holder.host, since: holder.since })

const fileError = (dataDir: string, what: string) => (cause: unknown) =>
  new SqlError({
    cause,
    message: `Failed to ${what} the lock of PGlite data directory ${dataDir}: ${cause instanceof Error ? cause.message : String(cause)}`,
  })

const errorCode = (cause: unknown) => (cause as { readonly code?: unknown } | null)?.code

/** Whether the process that took the lock may still hold it. */
const mayBeAlive = (holder: Holder): boolean => {
  if (holder.host !== hostname()) return true
  if (holder.boot !== null && bootId !== null && holder.boot !== bootId) return false
  // Not held by a layer of this process (checked first), so it is an earlier process that had
  // this pid: a container's first process, restarted, gets the same one.
  if (holder.pid === process.pid) return false
  try {
    process.kill(holder.pid, 0)
    return true
  } catch (cause) {
    // EPERM: the process exists, under another user.
    return errorCode(cause) === "EPERM"
  }
}

/** Puts the lock in place if there is none; answers the holder found otherwise (or none, if unreadable). */
const tryCreate = (dataDir: string, lockPath: string, holder: Holder) =>
  Effect.tryPromise({
    try: async (): Promise<Either.Either<void, Option.Option<Holder>>> => {
      const staging = `${lockPath}.${holder.token}`
      await NodeFs.writeFile(staging, encodeHolder(holder), { flag: "wx" })
      try {
        await NodeFs.link(staging, lockPath)
        return Either.right(undefined)
      } catch (cause) {
        if (errorCode(cause) !== "EEXIST") throw cause
        const text = await NodeFs.readFile(lockPath, "utf8").catch((error) => {
          if (errorCode(error) === "ENOENT") return undefined
          throw error
        })
        // Gone meanwhile: released just now; the next attempt takes it.
        return Either.left(text === undefined ? Option.none() : decodeHolder(text))
      } finally {
        await NodeFs.rm(staging, { force: true })
      }
    },
    catch: fileError(dataDir, "take"),
  })

/**
 * Removes the lock if it is still the one judged: `token`'s, or (undefined) an unreadable one.
 * Read and removal are two steps, so a process taking over a stale lock at the very moment
 * another does may remove the other's fresh one; both then open the directory. Only a crash
 * followed by two starts at once comes near it.
 */
const removeIfStill = (lockPath: string, token: string | undefined) =>
  Effect.promise(async () => {
    try {
      const found = decodeHolder(await NodeFs.readFile(lockPath, "utf8"))
      const same =
        token === undefined ? Option.isNone(found) : Option.isSome(found) && found.value.token === token
      if (same) await NodeFs.rm(lockPath, { force: true })
    } catch {
      // Already gone: nothing to remove.
    }
  })

const take = (dataDir: string, lockPath: string, holder: Holder) =>
  Effect.gen(function* () {
    // Few rounds: each either takes the lock, finds it held, or clears a stale one.
    for (let round = 0; round < 5; round++) {
      const result = yield* tryCreate(dataDir, lockPath, holder)
      if (Either.isRight(result)) return
      const found = result.left
      if (Option.isSome(found) && mayBeAlive(found.value)) return yield* lockedBy(dataDir, found.value)
      yield* Effect.logWarning(
        Option.isSome(found)
          ? `taking over the lock of PGlite data directory ${dataDir} from process ${found.value.pid}, which is gone`
          : `replacing an unreadable lock file in PGlite data directory ${dataDir}`,
      )
      yield* removeIfStill(lockPath, Option.isSome(found) ? found.value.token : undefined)
    }
    return yield* fileError(dataDir, "take")(new Error("other processes kept taking it over"))
  })

/**
 * Holds the directory (which must exist) until the scope closes; fails with `DataDirLocked`
 * naming the holder when another process, or another layer here, has it open.
 */
export const acquire = (dataDir: string): Effect.Effect<void, DataDirLocked | SqlError, Scope.Scope> =>
  Effect.gen(function* () {
    const directory = yield* Effect.tryPromise({
      try: () => NodeFs.realpath(dataDir),
      catch: fileError(dataDir, "find"),
    })
    const lockPath = NodePath.join(directory, lockFileName)
    const holder: Holder = {
      pid: process.pid,
      host: hostname(),
      boot: bootId,
      since: new Date(yield* Clock.currentTimeMillis),
      token: randomUUID(),
    }
    yield* Effect.acquireRelease(
      Effect.suspend(() => {
        const here = heldHere.get(directory)
        if (here !== undefined) return Effect.fail(lockedBy(dataDir, here))
        // Reserved before the first await, so two layers here starting together cannot both pass.
        heldHere.set(directory, holder)
        return take(dataDir, lockPath, holder).pipe(
          Effect.tapError(() => Effect.sync(() => heldHere.delete(directory))),
        )
      }),
      () =>
        Effect.zipRight(
          removeIfStill(lockPath, holder.token),
          Effect.sync(() => heldHere.delete(directory)),
        ),
    )
  })
