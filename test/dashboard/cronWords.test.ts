/** Cron expressions in words, as the schedules page shows them beside the expression. */
import { expect, describe as group, it } from "@effect/vitest"
import { describe } from "../../src/dashboard/cronWords.js"

group("a cron expression in words", () => {
  it.each([
    ["* * * * *", "Every minute"],
    ["*/15 * * * *", "Every 15 minutes"],
    ["*/10 * * * * *", "Every 10 seconds"],
    ["0 * * * *", "Every hour, on the hour"],
    ["30 * * * *", "At minute 30 of every hour"],
    ["0 */6 * * *", "Every 6 hours, on the hour"],
    ["5,35 */2 * * *", "At minutes 5 and 35 of every 2nd hour"],
    ["*/5 9-17 * * *", "Every 5 minutes from 09:00 to 17:59"],
    ["0 3 * * *", "At 03:00, every day"],
    ["30 0 0 * * *", "At 00:00:30, every day"],
    ["0 9,13,17 * * *", "At 09:00, 13:00 and 17:00, every day"],
    ["0 9-17 * * 1-5", "On the hour from 09:00 to 17:00, on Monday through Friday"],
    ["15 10 * * 6,0", "At 10:15, on Sunday and Saturday"],
    ["30 0 1 * *", "At 00:30, on day 1 of the month"],
    ["0 0 */2 * *", "At 00:00, on every 2nd day of the month"],
    ["0 0 1,15 * 1", "At 00:00, on days 1 and 15 of the month or on Monday"],
    ["0 12 * 1,7 *", "At 12:00, in January and July"],
  ])("%s reads as %s", (expression, words) => {
    expect(describe(expression)).toBe(words)
  })

  it("answers nothing for an expression that does not parse", () => {
    expect(describe("every day at noon")).toBeUndefined()
  })
})
