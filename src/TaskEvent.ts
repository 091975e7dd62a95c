/**
 * Events of task runs on this node, published on `Tasks.events`. As with `JobEvent`,
 * publishing never waits for a slow subscriber: one that falls behind loses the oldest.
 */
import { Data } from "effect"

interface Common {
  readonly taskId: string
  /** The task's name when it ran. */
  readonly taskName: string
  /** The node that runs it: this one. */
  readonly node: string
  /** `schedule` for a run that came due, `manual` for `runNow`. */
  readonly trigger: "schedule" | "manual"
  readonly at: Date
}

export type TaskEvent = Data.TaggedEnum<{
  /** A run started here. */
  Started: Common
  /** The run succeeded and its state was stored. */
  Succeeded: Common & { readonly durationMillis: number }
  /** The run failed; its state stays as before it. */
  Failed: Common & { readonly durationMillis: number; readonly error: string }
  /** The run died (a defect, or a state that no longer fits): the task is reset to its initial state. */
  Reset: Common & { readonly durationMillis: number; readonly error: string }
}>

export const TaskEvent = Data.taggedEnum<TaskEvent>()
