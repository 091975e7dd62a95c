/**
 * Hook middleware around an attempt. Applied once, when a handler or a queue is set up, and
 * only where some hook has middleware: an attempt without any runs exactly as it would
 * without hooks.
 */
import { Effect } from "effect"
import type * as Hook from "../Hook.js"
import type * as Job from "../Job.js"
import type { JobRecord } from "../JobRecord.js"

type Perform = (job: JobRecord) => Effect.Effect<unknown, unknown, any>

/**
 * Wraps `perform` in the hooks' middleware, the first hook outermost. A middleware that throws
 * while building its Effect fails the attempt as a defect, as a throwing handler does.
 */
export const around = (hooks: ReadonlyArray<Hook.Any>, perform: Perform): Perform => {
  let wrapped = perform
  for (let i = hooks.length - 1; i >= 0; i--) {
    const middleware = hooks[i]!.around
    if (middleware === undefined) continue
    const inner = wrapped
    wrapped = (job) =>
      Effect.suspend(() => {
        try {
          return middleware(inner(job) as Effect.Effect<unknown, unknown, never>, job)
        } catch (thrown) {
          return Effect.die(thrown)
        }
      })
  }
  return wrapped
}

/** Whether any of the hooks has middleware. */
export const hasMiddleware = (hooks: ReadonlyArray<Hook.Any> | undefined): boolean =>
  hooks?.some((hook) => hook.around !== undefined) ?? false

/**
 * A queue's handlers with the queue's middleware around each, outside the definition's own.
 * The same map when the queue has none, so such a queue runs the code it runs without hooks.
 */
export const forQueue = (
  handlers: ReadonlyMap<string, Job.Handler<any>>,
  hooks: ReadonlyArray<Hook.Any> | undefined,
): ReadonlyMap<string, Job.Handler<any>> => {
  if (hooks === undefined || !hasMiddleware(hooks)) return handlers
  const wrapped = new Map<string, Job.Handler<any>>()
  for (const [type, handler] of handlers) {
    wrapped.set(type, { definition: handler.definition, perform: around(hooks, handler.perform) })
  }
  return wrapped
}
