/**
 * Delivers job events to the lifecycle callbacks of hooks. The deliverer is one more subscriber
 * of the observer's events, made only once some hook has a callback: a node without any runs
 * exactly the code it runs without hooks, and the per-job path never waits for a callback.
 *
 * One fiber delivers, one event at a time, in the order the events happen on this node; for an
 * event, the queue's hooks run before the definition's, each in list order, each awaited before
 * the next. So a job's callbacks come in its lifecycle's order, and a slow callback holds up
 * later callbacks, never a queue. Delivery is at most once: the events wait in the subscriber's
 * buffer (`eventsCapacity`), and when callbacks fall that far behind the oldest are skipped.
 * When the runtime stops, events already waiting are delivered for up to the shutdown timeout.
 */
import { Cause, type Context, type Duration, Effect, Metric, Queue, Scope } from "effect"
import * as Hook from "../Hook.js"
import type * as Job from "../Job.js"
import type { JobEvent } from "../JobEvent.js"
import type { Observer } from "./observer.js"
import { asApp } from "./tracing/quiet.js"

export const hookFailuresTotal = Metric.counter("effect_jobs_hook_failures_total", {
  description: "Lifecycle callbacks of hooks that failed, tagged by hook and event",
  incremental: true,
})

type Hooks = ReadonlyArray<Hook.Any>

export interface HookCallbacks {
  /** A queue starting here, with its hooks: their callbacks hear of its jobs' events from now on. */
  readonly addQueue: (name: string, hooks: Hooks | undefined) => Effect.Effect<void>
  /** A queue stopped here: its callbacks hear no more. */
  readonly removeQueue: (name: string) => void
}

const hasCallbacks = (hooks: Hooks | undefined): hooks is Hooks =>
  hooks?.some((hook) => Object.values(Hook.callbackOf).some((field) => hook[field] !== undefined)) === true

export interface HookCallbacksOptions {
  readonly observer: Observer
  readonly handlers: ReadonlyMap<string, Job.Handler<any>>
  /** The queues the options name: the deliverer starts with the runtime when one has callbacks. */
  readonly queues: ReadonlyMap<string, { readonly hooks?: Hooks | undefined }>
  /** The services the layer was given, which the hooks' requirements are part of. */
  readonly context: Context.Context<any>
  readonly shutdownTimeout: Duration.Duration
  readonly supervise: (name: string, loop: Effect.Effect<never>) => Effect.Effect<unknown, never, Scope.Scope>
}

const runCallback = (hook: Hook.Any, event: JobEvent) => {
  const callback = hook[Hook.callbackOf[event._tag]] as
    | ((event: JobEvent) => Effect.Effect<unknown, unknown, any>)
    | undefined
  if (callback === undefined) return Effect.void
  return Effect.suspend(() => callback(event)).pipe(
    Effect.catchAllCause((cause) =>
      Effect.zipRight(
        Metric.increment(
          Metric.tagged(Metric.tagged(hookFailuresTotal, "hook", hook.name), "event", event._tag),
        ),
        Effect.logWarning(
          `hook ${hook.name} failed on the ${event._tag} event of job ${event.id} (${event.type}); the job is not affected`,
          Cause.isInterruptedOnly(cause) ? "interrupted" : cause,
        ),
      ),
    ),
    Effect.annotateLogs({ hook: hook.name, event: event._tag, job: event.id }),
  )
}

export const make = (options: HookCallbacksOptions): Effect.Effect<HookCallbacks, never, Scope.Scope> =>
  Effect.gen(function* () {
    const layerScope = yield* Effect.scope
    const byType = new Map<string, Hooks>()
    for (const [type, handler] of options.handlers) {
      if (hasCallbacks(handler.definition.hooks)) byType.set(type, handler.definition.hooks)
    }
    const byQueue = new Map<string, Hooks>()

    const deliver = (event: JobEvent) => {
      const hooks = [...(byQueue.get(event.queue) ?? []), ...(byType.get(event.type) ?? [])]
      return hooks.length === 0
        ? Effect.void
        : Effect.forEach(hooks, (hook) => asApp(runCallback(hook, event)), { discard: true })
    }

    let started = false
    const start = Effect.suspend(() => {
      if (started) return Effect.void
      started = true
      return Effect.gen(function* () {
        const events = yield* options.observer.subscribe
        // Registered before the fiber starts, so it runs after the fiber is stopped.
        yield* Effect.addFinalizer(() =>
          Queue.takeAll(events).pipe(
            Effect.flatMap((waiting) => Effect.forEach(waiting, deliver, { discard: true })),
            Effect.timeout(options.shutdownTimeout),
            Effect.ignore,
            Effect.provide(options.context),
          ),
        )
        const loop = Effect.forever(Effect.flatMap(Queue.take(events), deliver))
        yield* options.supervise("hooks", Effect.provide(loop, options.context))
      }).pipe(Scope.extend(layerScope))
    })
    // Started now rather than with the first queue, so it stops after the last outcomes are written.
    if (byType.size > 0 || Array.from(options.queues.values()).some((queue) => hasCallbacks(queue.hooks))) {
      yield* start
    }

    return {
      addQueue: (name, hooks) =>
        Effect.suspend(() => {
          if (!hasCallbacks(hooks)) return Effect.void
          byQueue.set(name, hooks)
          return start
        }),
      removeQueue: (name) => {
        byQueue.delete(name)
      },
    }
  })
