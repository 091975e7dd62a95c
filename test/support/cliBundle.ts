/**
 * Bundles the command line's sources once per test run into one ES module, with the packages
 * left as imports, so each subprocess the CLI tests start loads plain JavaScript instead of
 * compiling the sources through tsx (about a second less CPU per command). The dashboard's
 * assets go beside it, where its server reads them.
 */
import * as fs from "node:fs"
import * as NodePath from "node:path"
import { fileURLToPath } from "node:url"
import { build } from "esbuild"

const root = fileURLToPath(new URL("../..", import.meta.url))
export const cliBundleDir = NodePath.join(root, "node_modules", ".cache", "effect-jobs-test")
export const cliBundle = NodePath.join(cliBundleDir, "bin.mjs")

export default async function setup() {
  await build({
    entryPoints: [NodePath.join(root, "src", "cli", "bin.ts")],
    outfile: cliBundle,
    bundle: true,
    platform: "node",
    format: "esm",
    target: "node20",
    packages: "external",
    logLevel: "warning",
  })
  fs.cpSync(NodePath.join(root, "src", "dashboard", "assets"), NodePath.join(cliBundleDir, "assets"), {
    recursive: true,
  })
}
