/**
 * Conformance of the nodes and leader tables: heartbeats, registration, and leadership, all
 * judged by the database's clock.
 */
import { describe, expect, layer } from "@effect/vitest"
import { Effect } from "effect"
import { engines } from "../support/engines.js"
import { withStore } from "./support.js"

const node = (id: string, pid = 1) => ({ id, host: "h", pid, queues: ["q"], startedAt: new Date(0) })

for (const engine of engines) {
  describe(`store nodes on ${engine.name}`, () => {
    layer(engine.layer, { timeout: 60_000, excludeTestServices: true })((it) => {
      it.scoped(
        "a heartbeat registers the node with the database's time, and nodes lists the live ones",
        () =>
          Effect.gen(function* () {
            const { sql, schema, store, rows } = yield* withStore
            yield* store.heartbeat(node("a"))
            yield* store.heartbeat(node("b"))
            const before = yield* store.now
            yield* store.heartbeat({ ...node("a"), queues: ["q", "r"] })
            const [a] = yield* rows("nodes", "id = 'a'")
            expect(a.queues).toEqual(["q", "r"])
            expect(new Date(a.heartbeat_at).getTime()).toBeGreaterThanOrEqual(before.getTime())
            // b falls silent: an hour without a heartbeat, by the database's clock.
            yield* sql.unsafe(
              `UPDATE ${schema}.nodes SET heartbeat_at = now() - interval '1 hour' WHERE id = 'b'`,
            )
            const live = yield* store.nodes(60_000)
            expect(live.map((n) => [n.id, n.host, n.pid, n.queues])).toEqual([["a", "h", 1, ["q", "r"]]])
            yield* store.forgetNode("a")
            expect((yield* rows("nodes")).map((r: any) => r.id)).toEqual(["b"])
          }),
      )

      it.scoped("a node name held by a live node is refused, and taken once its holder falls silent", () =>
        Effect.gen(function* () {
          const { sql, schema, store, rows } = yield* withStore
          expect(yield* store.registerNode(node("a", 1), 60_000)).toBe(true)
          expect(yield* store.registerNode(node("a", 2), 60_000)).toBe(false)
          expect((yield* rows("nodes")).map((r: any) => Number(r.pid))).toEqual([1])
          yield* sql.unsafe(`UPDATE ${schema}.nodes SET heartbeat_at = now() - interval '1 hour'`)
          expect(yield* store.registerNode(node("a", 2), 60_000)).toBe(true)
          expect((yield* rows("nodes")).map((r: any) => Number(r.pid))).toEqual([2])
        }),
      )

      it.scoped(
        "one leader at a time: the holder renews its term, another node takes it once it expires",
        () =>
          Effect.gen(function* () {
            const { sql, schema, store, rows } = yield* withStore
            expect(yield* store.leader).toBe(null)
            expect(yield* store.elect("a", 60_000)).toBe(true)
            const [first] = yield* rows("leader")
            expect(yield* store.elect("b", 60_000)).toBe(false)
            expect(yield* store.elect("a", 60_000)).toBe(true)
            const [renewed] = yield* rows("leader")
            expect(renewed.node).toBe("a")
            expect(new Date(renewed.elected_at)).toEqual(new Date(first.elected_at))
            expect(new Date(renewed.expires_at).getTime()).toBeGreaterThanOrEqual(
              new Date(first.expires_at).getTime(),
            )
            expect(yield* store.leader).toBe("a")
            yield* sql.unsafe(`UPDATE ${schema}.leader SET expires_at = now() - interval '1 second'`)
            expect(yield* store.leader).toBe(null)
            expect(yield* store.elect("b", 60_000)).toBe(true)
            expect(yield* store.leader).toBe("b")
            yield* store.resign("a")
            expect(yield* store.leader).toBe("b")
            yield* store.resign("b")
            expect(yield* rows("leader")).toEqual([])
          }),
      )
    })
  })
}
