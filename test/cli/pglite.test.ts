/** `effect-jobs` on a PGlite data directory of its own, which `work` locks while it runs. */
import * as NodeFs from "node:fs/promises"
import * as NodeOs from "node:os"
import * as NodePath from "node:path"
import { afterAll, describe } from "@effect/vitest"
import { scenario } from "./scenario.js"

const dataDir = NodePath.join(
  await NodeFs.mkdtemp(NodePath.join(NodeOs.tmpdir(), "effect-jobs-cli-")),
  "data",
)

describe("effect-jobs on PGlite", () => {
  afterAll(() => NodeFs.rm(NodePath.dirname(dataDir), { recursive: true, force: true }))
  scenario({ engine: "pglite", database: ["--pglite", dataDir] })
})
