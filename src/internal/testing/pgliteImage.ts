/**
 * A migrated PGlite database as an image, made once and opened by every test layer after it.
 * Opening an image skips `initdb` and the migrations, the larger part of a fresh database's
 * cost. The image is kept in memory and in the system's temporary directory, under a name
 * that changes with the migrations, so the test files of one run (often separate processes)
 * share it.
 */
import { createHash } from "node:crypto"
import * as NodeFs from "node:fs/promises"
import * as NodeOs from "node:os"
import * as NodePath from "node:path"
import { Effect } from "effect"
import * as PgliteClient from "../engines/pgliteClient.js"
import { migrate, migrations } from "../store/migrations.js"
import { toDatabaseError } from "../store/retryDatabase.js"

const images = new Map<string, Blob>()

/** Where the image of `schema` is kept: the name changes with the migrations. */
export const pathOf = (schema: string) => {
  const hash = createHash("sha256")
  for (const migration of migrations) hash.update(migration.statements(schema).join(";\n"))
  return NodePath.join(NodeOs.tmpdir(), `effect-jobs-pglite-${schema}-${hash.digest("hex").slice(0, 16)}.tar`)
}

/** A fresh database, migrated, as an image; written to `path` through a file of its own, then renamed. */
const build = (schema: string, path: string) =>
  Effect.scoped(
    Effect.gen(function* () {
      const engine = yield* PgliteClient.make({})
      yield* migrate(engine.client, schema).pipe(
        Effect.catchTag("SqlError", (error) => toDatabaseError("migrating the jobs schema")(error)),
      )
      const image = yield* engine.dump
      // Another process may write the same image at the same time: each renames its own file.
      const partial = `${path}.${process.pid}.${Date.now()}`
      yield* Effect.promise(async () => {
        try {
          await NodeFs.writeFile(partial, new Uint8Array(await image.arrayBuffer()))
          await NodeFs.rename(partial, path)
        } catch {
          // Only the cache is lost: the next process builds the image again.
          await NodeFs.rm(partial, { force: true })
        }
      })
      return image
    }),
  )

const readImage = (path: string) =>
  Effect.promise(() =>
    NodeFs.readFile(path).then(
      (bytes) => new Blob([bytes]),
      () => undefined,
    ),
  )

/** Opens a database from the image of `schema` migrated, building the image first if there is none. */
export const open = (schema: string) =>
  Effect.gen(function* () {
    const path = pathOf(schema)
    const known = images.get(path) ?? (yield* readImage(path))
    if (known !== undefined) {
      images.set(path, known)
      // An image that does not open (written by another PGlite version, cut short) is built again.
      const opened = yield* Effect.either(PgliteClient.make({ loadDataDir: known }))
      if (opened._tag === "Right") return opened.right
    }
    const image = yield* build(schema, path)
    images.set(path, image)
    return yield* PgliteClient.make({ loadDataDir: image })
  })
