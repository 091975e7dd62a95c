/**
 * Bundles the programs the tests start as subprocesses (the command line, the crash suite's
 * workers, the processes of the lock and client tests) once per test run, each into one ES
 * module with the packages left as imports, so a subprocess loads plain JavaScript instead of
 * compiling the sources through tsx: about a second less CPU for each process started. The
 * dashboard's assets go beside the bundles, where its server reads them. Every run rebuilds
 * them, so they always hold the sources.
 */
import * as fs from "node:fs"
import * as NodePath from "node:path"
import { fileURLToPath } from "node:url"
import { build } from "esbuild"

const root = fileURLToPath(new URL("../..", import.meta.url))
// Inside the checkout, so each checkout (a worktree too) has its own bundles, and the
// bundles' imports resolve to the checkout's packages.
const dir = NodePath.join(root, ".test-bundles")

const entries = {
  cli: "src/cli/bin.ts",
  chaosWorker: "test/chaos/worker.ts",
  livenessWorker: "test/chaos/liveness-worker.ts",
  holdDataDir: "test/support/holdDataDir.ts",
  closePglite: "test/support/closePglite.ts",
  clientProcess: "test/support/clientProcess.ts",
} as const

/** The bundle of a program, to run as `node <path> ...args`. */
export const bundled = (name: keyof typeof entries) => NodePath.join(dir, `${name}.mjs`)

export default async function setup() {
  await build({
    entryPoints: Object.entries(entries).map(([name, path]) => ({
      in: NodePath.join(root, path),
      out: name,
    })),
    outdir: dir,
    outExtension: { ".js": ".mjs" },
    bundle: true,
    platform: "node",
    format: "esm",
    target: "node20",
    packages: "external",
    logLevel: "warning",
  })
  fs.cpSync(NodePath.join(root, "src", "dashboard", "assets"), NodePath.join(dir, "assets"), {
    recursive: true,
  })
}
