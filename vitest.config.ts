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
    include: ["test/**/*.test.ts", "examples/**/*.test.ts"],
    reporters: ["default", "./test/support/summaryReporter.ts"],
    setupFiles: ["./test/support/preload.ts"],
    globalSetup: ["./test/support/bundles.ts"],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Test files share one PostgreSQL server; each uses its own schema, so files may run in parallel.
    fileParallelism: true,
    maxWorkers: 2,
  },
})
