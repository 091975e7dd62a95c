import { Clock, Effect } from "effect"

/**
 * Effect's clock, `offsetMillis` ahead (or behind, when negative): what a node whose system
 * clock is off sees. Sleeps are real ones.
 */
export const skewedClock = (offsetMillis: number): Clock.Clock => {
  const base = Clock.make()
  const offsetNanos = BigInt(offsetMillis) * 1_000_000n
  const millis = () => base.unsafeCurrentTimeMillis() + offsetMillis
  const nanos = () => base.unsafeCurrentTimeNanos() + offsetNanos
  return {
    [Clock.ClockTypeId]: Clock.ClockTypeId,
    unsafeCurrentTimeMillis: millis,
    currentTimeMillis: Effect.sync(millis),
    unsafeCurrentTimeNanos: nanos,
    currentTimeNanos: Effect.sync(nanos),
    sleep: (duration) => base.sleep(duration),
  }
}
