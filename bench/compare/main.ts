/**
 * `npm run bench:compare`: effect-jobs side by side with graphile-worker, pg-boss and
 * BullMQ on this machine (see docs/benchmarks.md). The other systems are the dependencies
 * of the bench package (bench/package.json), never of the library: this entry installs it
 * first when bench/node_modules is missing or older than its package files, builds the
 * library (`npm run build`: effect-jobs is measured as the compiled JavaScript an app
 * installs, as the other systems are), then runs the comparison. Options: `--help`.
 */
import { spawnSync } from "node:child_process"
import { createHash } from "node:crypto"
import { existsSync, readFileSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { fileURLToPath } from "node:url"

const benchDir = fileURLToPath(new URL("../", import.meta.url))
const stampFile = join(benchDir, "node_modules", ".bench-compare-installed")

/** A digest of the package files: the install is stale when it differs from the one recorded. */
const digest = () =>
  createHash("sha256")
    .update(
      ["package.json", "package-lock.json"].map((f) => readFileSync(join(benchDir, f), "utf8")).join("\0"),
    )
    .digest("hex")

const ensureInstalled = () => {
  if (existsSync(stampFile) && readFileSync(stampFile, "utf8") === digest()) return
  console.log("installing the bench package (npm install in bench/)")
  const npm = process.platform === "win32" ? "npm.cmd" : "npm"
  const result = spawnSync(npm, ["install", "--no-audit", "--no-fund"], { cwd: benchDir, stdio: "inherit" })
  if (result.status !== 0) {
    console.error("npm install in bench/ failed")
    process.exit(1)
  }
  writeFileSync(stampFile, digest())
}

/**
 * The compiled library in dist/, and this harness in bench/compare-js/, from the sources as
 * they are now: every process of the comparison then runs plain JavaScript.
 */
const build = () => {
  const npm = process.platform === "win32" ? "npm.cmd" : "npm"
  const steps: Array<[string, Array<string>]> = [
    ["npm run build", ["run", "build"]],
    ["compiling the harness", ["exec", "--", "tsc", "-p", "bench/tsconfig.build.json"]],
  ]
  for (const [what, args] of steps) {
    const result = spawnSync(npm, args, { cwd: join(benchDir, ".."), stdio: "inherit" })
    if (result.status !== 0) {
      console.error(`${what} failed`)
      process.exit(1)
    }
  }
}

ensureInstalled()
build()
// Loaded only now: the comparison's modules need the bench package's dependencies.
const compiledOrchestrate = new URL("../compare-js/orchestrate.js", import.meta.url).href
const { main } = (await import(compiledOrchestrate)) as typeof import("./orchestrate.js")
main(process.argv.slice(2)).catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : error)
  process.exitCode = 1
})
