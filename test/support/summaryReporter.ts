import type { Reporter, TestModule } from "vitest/node"

/** Ends the run with one plain line, `tests: N passed, N failed, N skipped`, for CI logs. */
export default class SummaryReporter implements Reporter {
  onTestRunEnd(testModules: ReadonlyArray<TestModule>) {
    let passed = 0
    let failed = 0
    let skipped = 0
    for (const module of testModules) {
      for (const test of module.children.allTests()) {
        const state = test.result().state
        if (state === "passed") passed++
        else if (state === "failed") failed++
        else skipped++
      }
    }
    this.summary = `tests: ${passed} passed, ${failed} failed, ${skipped} skipped`
  }

  private summary = ""

  // The default reporter prints its summary after onTestRunEnd; waiting one turn of the event
  // loop makes ours the last line of the run.
  onFinished() {
    setImmediate(() => process.stdout.write(`\n${this.summary}\n`))
  }
}
