/**
 * A TCP proxy in front of PostgreSQL that a test can cut and restore, to play a database
 * that goes away and comes back.
 */
import { createConnection, createServer, type Server, type Socket } from "node:net"
import { Effect } from "effect"

export interface Proxy {
  readonly port: number
  /** Refuses new connections and drops every open one. */
  readonly cut: Effect.Effect<void>
  readonly restore: Effect.Effect<void>
}

export const makeProxy = (target: { host: string; port: number }) =>
  Effect.acquireRelease(
    Effect.async<{ proxy: Proxy; close: () => void }>((resume) => {
      const sockets = new Set<Socket>()
      let server: Server
      let port = 0
      const listen = (done: () => void) => {
        server = createServer((client) => {
          const upstream = createConnection(target)
          sockets.add(client).add(upstream)
          const drop = () => {
            client.destroy()
            upstream.destroy()
            sockets.delete(client)
            sockets.delete(upstream)
          }
          client.on("error", drop).on("close", drop)
          upstream.on("error", drop).on("close", drop)
          client.pipe(upstream).pipe(client)
        })
        server.listen(port, "127.0.0.1", () => {
          port = (server.address() as { port: number }).port
          done()
        })
      }
      const cut = () =>
        new Promise<void>((resolve) => {
          for (const socket of sockets) socket.destroy()
          sockets.clear()
          server.close(() => resolve())
        })
      listen(() =>
        resume(
          Effect.succeed({
            proxy: {
              port,
              cut: Effect.promise(cut),
              restore: Effect.promise(() => new Promise<void>((resolve) => listen(resolve))),
            },
            close: () => {
              for (const socket of sockets) socket.destroy()
              server.close()
            },
          }),
        ),
      )
    }),
    ({ close }) => Effect.sync(close),
  ).pipe(Effect.map(({ proxy }) => proxy))
