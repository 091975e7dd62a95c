/**
 * The fibers of the jobs a queue runs on this node, in reusable slots.
 *
 * Not a `Map` keyed by job id: a map that gains and loses an entry per job rebuilds its
 * hash table over and over. A table that lives long enough is in the old generation, and the
 * table it replaces stays there, still pointing to the fibers it held, until the next full
 * collection (see docs/architecture.md, "Memory on the per-job path"). Here the arrays only grow, to the most
 * jobs ever run at once, and a finished job's slot is emptied and reused. Finding one job by
 * id walks the slots; only a cancel does that.
 */
import type { Fiber } from "effect"
import type { JobId } from "../../JobRecord.js"

export class RunningFibers {
  private readonly ids: Array<JobId | undefined> = []
  private readonly types: Array<string | undefined> = []
  private readonly fibers: Array<Fiber.RuntimeFiber<void> | undefined> = []
  private readonly free: Array<number> = []

  get size(): number {
    return this.fibers.length - this.free.length
  }

  /** Keeps a job's fiber; returns the slot to `remove` it by. */
  add(id: JobId, fiber: Fiber.RuntimeFiber<void>, type?: string): number {
    let slot = this.free.pop()
    if (slot === undefined) {
      slot = this.fibers.length
      this.ids.push(id)
      this.types.push(type)
      this.fibers.push(fiber)
    } else {
      this.ids[slot] = id
      this.types[slot] = type
      this.fibers[slot] = fiber
    }
    return slot
  }

  remove(slot: number): void {
    if (this.fibers[slot] === undefined) return
    this.ids[slot] = undefined
    this.types[slot] = undefined
    this.fibers[slot] = undefined
    this.free.push(slot)
  }

  get(id: JobId): Fiber.RuntimeFiber<void> | undefined {
    for (let slot = 0; slot < this.ids.length; slot++) {
      if (this.ids[slot] === id) return this.fibers[slot]
    }
    return undefined
  }

  /** The type of the job, when it is kept here. */
  typeOf(id: JobId): string | undefined {
    for (let slot = 0; slot < this.ids.length; slot++) {
      if (this.ids[slot] === id) return this.types[slot]
    }
    return undefined
  }

  /** The jobs kept now, for a person to read. */
  jobs(): Array<{ readonly id: JobId; readonly type: string | undefined }> {
    const jobs: Array<{ id: JobId; type: string | undefined }> = []
    for (let slot = 0; slot < this.ids.length; slot++) {
      const id = this.ids[slot]
      if (id !== undefined) jobs.push({ id, type: this.types[slot] })
    }
    return jobs
  }

  /** The fibers kept now, as a new array. */
  all(): Array<Fiber.RuntimeFiber<void>> {
    const all: Array<Fiber.RuntimeFiber<void>> = []
    for (const fiber of this.fibers) if (fiber !== undefined) all.push(fiber)
    return all
  }

  /** Any one of the fibers kept now. */
  any(): Fiber.RuntimeFiber<void> | undefined {
    for (const fiber of this.fibers) if (fiber !== undefined) return fiber
    return undefined
  }
}
