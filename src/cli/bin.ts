#!/usr/bin/env node
/**
 * The `effect-jobs` executable. The command line's libraries are optional peers of the package
 * (an app that never runs it need not install them), so they are looked for first and, when
 * missing, named in one line rather than a stack trace.
 */
const missing: Array<string> = []
// Resolved, not loaded: loading all of @effect/platform-node would cost every command its time.
for (const [name, entry] of [
  ["@effect/cli", "@effect/cli"],
  ["@effect/platform-node", "@effect/platform-node/NodeRuntime"],
]) {
  try {
    import.meta.resolve(entry!)
  } catch {
    missing.push(name!)
  }
}
if (missing.length > 0) {
  process.stderr.write(
    `effect-jobs: the command line needs ${missing.join(" and ")}: install ${missing.length === 1 ? "it" : "them"} with \`npm install ${missing.join(" ")}\`\n`,
  )
  process.exit(1)
}
const { main } = await import("./main.js")
main(process.argv)
