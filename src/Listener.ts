/**
 * The engine-specific half of LISTEN/NOTIFY, and of the node's liveness. Sending a
 * notification is plain SQL (`pg_notify`) and works through any `SqlClient`, inside the app's
 * transactions too; receiving one needs a connection that stays open, which each engine
 * provides here. So does the connection the node's heartbeat and pings go through, when the
 * engine has one apart from the app's pool.
 */
import type { SqlClient } from "@effect/sql/SqlClient"
import type { SqlError } from "@effect/sql/SqlError"
import { Context, Layer, type Stream } from "effect"

export class Listener extends Context.Tag("effect-jobs/Listener")<
  Listener,
  {
    /** Which engine this is, for logs and benchmarks. */
    readonly engine: "postgres" | "pglite"
    /**
     * The payloads sent to `channel`, in order, for as long as the stream is consumed.
     * The stream fails with a `SqlError` when the listening connection is lost; the
     * caller decides when to listen again.
     */
    readonly listen: (channel: string) => Stream.Stream<string, SqlError>
    /**
     * A connection of its own for the node's heartbeat and LISTEN pings, so that handlers
     * holding every connection of the app's pool cannot make a live node look dead (its jobs
     * would be rescued and run again elsewhere while they still run here). Undefined where
     * there is none: they then go through the `SqlClient` like everything else.
     */
    readonly liveness?: SqlClient | undefined
  }
>() {}

export const make = (
  engine: "postgres" | "pglite",
  listen: (channel: string) => Stream.Stream<string, SqlError>,
  liveness?: SqlClient,
): Listener["Type"] => ({ engine, listen, liveness })

export const layer = (
  engine: "postgres" | "pglite",
  listen: (channel: string) => Stream.Stream<string, SqlError>,
  liveness?: SqlClient,
) => Layer.succeed(Listener, make(engine, listen, liveness))
