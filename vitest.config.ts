import { fileURLToPath } from "node:url"
import { defineConfig } from "vitest/config"

export default defineConfig({
  resolve: {
    // The example app imports the package by name, as an app would.
    alias: [
      { find: /^effect-jobs$/, replacement: fileURLToPath(new URL("./src/index.ts", import.meta.url)) },
      { find: /^effect-jobs\/testing$/, replacement: fileURLToPath(new URL("./src/Testing.ts", import.meta.url)) },
    ],
  },
  test: {
    reporters: ["default", "./test/support/summaryReporter.ts"],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Test files share one PostgreSQL server; each uses its own schema, so files may run in parallel.
    fileParallelism: true,
    maxWorkers: 2,
    projects: [
      {
        extends: true,
        test: {
          name: "library",
          include: ["test/**/*.test.ts"],
          setupFiles: ["./test/support/preload.ts"],
          globalSetup: ["./test/support/bundles.ts"],
        },
      },
      {
        // As the guide advises an app: the files of a worker share its process, and with it
        // the PGlite database one file's `Testing.pglite()` gives back to the next.
        extends: true,
        test: { name: "examples", include: ["examples/**/*.test.ts"], isolate: false },
      },
    ],
  },
})
