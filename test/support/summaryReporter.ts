import type { Reporter, TestModule } from "vitest/node"

/**
 * Ends the run with one plain line, `tests: N passed, N failed, N skipped`, for CI logs,
 * after a line for each test skipped with a reason (`ctx.skip(reason)`), so no skip is silent.
 */
export default class SummaryReporter implements Reporter {
  onTestRunEnd(testModules: ReadonlyArray<TestModule>) {
    let passed = 0
    let failed = 0
    let skipped = 0
    const reasons: Array<string> = []
    for (const module of testModules) {
      for (const test of module.children.allTests()) {
        const state = test.result().state
        if (state === "passed") passed++
        else if (state === "failed") failed++
        else {
          skipped++
          const result = test.result()
          if (result.state === "skipped" && result.note)
            reasons.push(`skipped: ${test.fullName}: ${result.note}`)
        }
      }
    }
    this.summary = [...reasons, `tests: ${passed} passed, ${failed} failed, ${skipped} skipped`].join("\n")
  }

  private summary = ""

  // The default reporter prints its summary after onTestRunEnd; waiting one turn of the event
  // loop makes ours the last line of the run.
  onFinished() {
    setImmediate(() => process.stdout.write(`\n${this.summary}\n`))
  }
}
