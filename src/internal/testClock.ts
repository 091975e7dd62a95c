/**
 * Whether a `Clock` is Effect's `TestClock`. Its class is internal to `effect`, so the clock is
 * recognised by the controls only a TestClock has.
 */
import type { Clock, TestClock } from "effect"

export const isTestClock = (clock: Clock.Clock): clock is TestClock.TestClock => {
  const test = clock as Partial<TestClock.TestClock>
  return (
    typeof test.adjust === "function" &&
    typeof test.adjustWith === "function" &&
    typeof test.setTime === "function"
  )
}
