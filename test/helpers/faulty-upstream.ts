// One raw TCP upstream whose behaviour is chosen by the request path, so a single relay can be driven
// through every fault and shown healthy right after each one.
import type { Socket } from 'node:net'
import { onEachRequest, startRawUpstream, type Upstream } from './upstreams.js'

/**
 * - `/ok`        200 with a small JSON body, keep-alive
 * - `/hang`      accepts the request, never answers
 * - `/stall`     answers the headers and one event, then nothing
 * - `/reset`     answers the headers and one event, then resets the connection
 * - `/malformed` answers something that is not HTTP
 * - `/idle-close` 200, then closes the idle connection after 100 ms (a pool's stale socket)
 */
export async function startFaultyUpstream (): Promise<Upstream & { seen: string[] }> {
  const seen: string[] = []
  const upstream = await startRawUpstream((socket: Socket) => {
    onEachRequest(socket, (path) => {
      seen.push(path)
      respond(socket, path)
    })
  })
  return Object.assign(upstream, { seen })
}

function respond (socket: Socket, path: string): void {
  const events = 'HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n9\r\ndata: 1\n\n\r\n'
  switch (path.split('?')[0]) {
    case '/hang':
      return
    case '/stall':
      socket.write(events)
      return
    case '/reset':
      socket.write(events)
      setTimeout(() => socket.resetAndDestroy(), 50)
      return
    case '/malformed':
      socket.end('HTTP/1.1 abc this is not HTTP\r\n\r\n')
      return
    case '/idle-close':
      socket.write('HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 11\r\n\r\n{"ok":true}')
      setTimeout(() => socket.end(), 100)
      return
    default:
      socket.write('HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 11\r\n\r\n{"ok":true}')
  }
}
