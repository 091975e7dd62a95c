/**
 * The real runtime under `@effect/vitest`'s TestClock: its local waits would never end, so
 * building it fails at once with a typed error that says what to use instead.
 */
import { describe, expect, layer } from "@effect/vitest"
import { Effect, Layer } from "effect"
import * as Jobs from "../../src/Jobs.js"
import { engines } from "../support/engines.js"

for (const engine of engines) {
  describe(`Jobs.layer on ${engine.name} under the TestClock`, () => {
    layer(engine.layer, { timeout: 300_000 })((it) => {
      it.effect("fails at once with TestClockInUse instead of hanging", () =>
        Effect.gen(function* () {
          const error = yield* Layer.build(Jobs.layer({ schema: "never_created" })).pipe(
            Effect.scoped,
            Effect.flip,
          )
          expect(error._tag).toBe("TestClockInUse")
          expect(error.message).toContain("it.live")
          expect(error.message).toContain("effect-jobs/testing")
        }),
      )
    })
  })
}
