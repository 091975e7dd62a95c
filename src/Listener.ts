/**
 * The engine-specific half of LISTEN/NOTIFY. Sending a notification is plain SQL
 * (`pg_notify`) and works through any `SqlClient`, inside the app's transactions too;
 * receiving one needs a connection that stays open, which each engine provides here.
 */
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
  }
>() {}

export const make = (
  engine: "postgres" | "pglite",
  listen: (channel: string) => Stream.Stream<string, SqlError>,
): Listener["Type"] => ({ engine, listen })

export const layer = (
  engine: "postgres" | "pglite",
  listen: (channel: string) => Stream.Stream<string, SqlError>,
) => Layer.succeed(Listener, make(engine, listen))
