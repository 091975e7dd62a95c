import { defineConfig } from "vitest/config"

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    reporters: ["default", "./test/support/summaryReporter.ts"],
    setupFiles: ["./test/support/preload.ts"],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Test files share one PostgreSQL server; each uses its own schema, so files may run in parallel.
    fileParallelism: true,
    maxWorkers: 2,
  },
})
