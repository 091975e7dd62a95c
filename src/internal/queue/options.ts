/** What a queue's dispatcher is built from: its options and the runtime's parts it uses. */
import type { Duration, Effect } from "effect"
import type * as Job from "../../Job.js"
import type { Observer } from "../observer.js"
import type { QueueLimits, Store } from "../store/store.js"
import type { TraceLinking } from "../tracing/attemptSpan.js"
import type { Completer } from "./completer.js"
import type { Journal } from "./journal.js"

export interface QueueOptions {
  readonly name: string
  readonly concurrency: number
  readonly paused: boolean
  readonly pollInterval: Duration.Duration
  readonly shutdownTimeout: Duration.Duration
  /** Cluster-wide limits, when the queue has any. */
  readonly limits: QueueLimits | undefined
  /** Where this queue's discarded jobs go instead of staying discarded. */
  readonly deadLetter: string | undefined
  /** A span per attempt; undefined means "when a tracer other than Effect's built-in one is installed". */
  readonly tracing: boolean | undefined
  /** How an attempt's span relates to the span that inserted its job. */
  readonly traceLinking: TraceLinking
}

export interface RunnerEnvironment {
  readonly store: Store
  readonly completer: Completer
  readonly observer: Observer
  readonly node: string
  readonly handlers: ReadonlyMap<string, Job.Handler<any>>
  /** Where handlers' progress and log lines go; without one, `Job.progress` and `Job.log` do nothing. */
  readonly journal?: Journal | undefined
  /**
   * Open while this node's heartbeat is fresh: a node that may already count as dead claims
   * nothing more until its heartbeat succeeds again. Always open when not given.
   */
  readonly live?: Effect.Effect<void> | undefined
}

/**
 * What the claim loop and the attempts of one queue share. They are on the per-job path, so
 * they are plain fields of one object, read and written in place.
 */
export class Counters {
  /** Claimed here and not yet ended. */
  running = 0
  /** Claimed here and not yet settled: still running, or its outcome waiting to be written. */
  held = 0
  /** Jobs rescued before (suspects) running here. */
  suspectsRunning = 0
  /** The last claim filled its demand: more jobs are likely waiting. */
  backlog = false
  /** Shutdown began: no more claims. */
  stopping = false
  /** The queue's scope is closed: a job claimed now is given back instead of started (so too while paused). */
  closed = false

  constructor(
    public limit: number,
    public paused: boolean,
  ) {}

  /** How many jobs the next claim may take. */
  demand(): number {
    return Math.min(this.limit - this.running, 2 * this.limit - this.held)
  }
}
