/**
 * Jobs put straight into a store, for tests that drive the store without a runtime.
 */
import type * as Store from "../../src/internal/store/store.js"

/** `count` available jobs of type `noop` with empty args in queue `q`, in one insert. */
export const insertNoops = (store: Store.Store, count: number) =>
  store.insert(
    {
      queue: "q",
      type: "noop",
      state: "available",
      priority: 0,
      maxAttempts: 3,
      meta: {},
      scheduledAt: new Date(),
      args: Array.from({ length: count }, () => ({})),
      argsJson: Array.from({ length: count }, () => "{}"),
    },
    new Date(),
  )
