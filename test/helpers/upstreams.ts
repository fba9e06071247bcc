// Real upstream servers on loopback ephemeral ports, one per behaviour the relay must survive.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import { createServer as createNetServer, type AddressInfo, type Server as NetServer, type Socket } from 'node:net'
import { once } from 'node:events'
import { createDemoUpstream } from '../../dev/demo-upstream.js'

export { waitFor } from '../../harness/wait.js'
/** A loopback port nothing listens on: connecting to it is refused. */
export { freePort as refusedPort } from '../../harness/ports.js'

export interface Upstream {
  url: string
  port: number
  /** Every request the upstream received, in order */
  requests: Array<{ method: string, url: string, headers: IncomingMessage['headers'] }>
  /** TCP connections accepted so far */
  connections: number
  close(): Promise<void>
}

type Handler = (req: IncomingMessage, res: ServerResponse) => void

async function listen (server: Server | NetServer): Promise<number> {
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  return (server.address() as AddressInfo).port
}

function track (server: Server | NetServer): { sockets: Set<Socket>, counter: { connections: number } } {
  const sockets = new Set<Socket>()
  const counter = { connections: 0 }
  server.on('connection', (socket: Socket) => {
    counter.connections++
    sockets.add(socket)
    socket.on('close', () => sockets.delete(socket))
  })
  return { sockets, counter }
}

/** An HTTP upstream with the given handler (the demo upstream by default). */
export async function startUpstream (handler?: Handler): Promise<Upstream> {
  const requests: Upstream['requests'] = []
  const server = handler === undefined ? createDemoUpstream() : createServer(handler)
  server.prependListener('request', (req: IncomingMessage) => {
    requests.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers })
  })
  const { sockets, counter } = track(server)
  const port = await listen(server)
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    requests,
    get connections () { return counter.connections },
    async close () {
      for (const socket of sockets) socket.destroy()
      server.close()
      await once(server, 'close')
    }
  }
}

/** A raw TCP upstream: `onSocket` decides what bytes (if any) go back. */
export async function startRawUpstream (onSocket: (socket: Socket) => void): Promise<Upstream> {
  const server = createNetServer(onSocket)
  const { sockets, counter } = track(server)
  const port = await listen(server)
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    requests: [],
    get connections () { return counter.connections },
    async close () {
      for (const socket of sockets) socket.destroy()
      server.close()
      await once(server, 'close')
    }
  }
}

/**
 * Calls `respond` with the path of each request read on `socket`, in order (a declared-length body is
 * skipped): how the raw upstreams answer pipelined and kept-alive requests on one socket.
 */
export function onEachRequest (socket: Socket, respond: (path: string) => void): void {
  socket.on('error', () => {})
  let buffered = ''
  socket.setEncoding('latin1')
  socket.on('data', (chunk: string) => {
    buffered += chunk
    let end: number
    while ((end = buffered.indexOf('\r\n\r\n')) !== -1) {
      const head = buffered.slice(0, end)
      const length = Number(/\r\ncontent-length:\s*(\d+)/i.exec(head)?.[1] ?? 0)
      buffered = buffered.slice(end + 4 + length)
      respond(head.split(' ')[1] ?? '/')
    }
  })
}

export interface CountingUpstream extends Upstream {
  /** Requests whose response has not ended yet (finished, or closed by the relay) */
  readonly open: number
  /** The most requests it ever had open at once */
  readonly maxOpen: number
}

/**
 * An upstream that records how many requests it has open at once, with routes for holding them:
 * - `/delay?ms=N` answers after N ms;
 * - `/sse?events=N&interval=M&size=B` streams N events of B bytes, one every M ms (forever without `events`);
 * - `/slow` never answers, until the relay gives up on it;
 * - anything else answers at once.
 */
export async function startCountingUpstream (): Promise<CountingUpstream> {
  let open = 0
  let maxOpen = 0
  const upstream = await startUpstream((req, res) => {
    open++
    maxOpen = Math.max(maxOpen, open)
    res.once('close', () => { open-- })
    req.resume()
    const url = new URL(req.url ?? '/', 'http://upstream.invalid')
    if (url.pathname === '/delay') {
      const timer = setTimeout(() => res.end(JSON.stringify({ path: url.pathname + url.search })), Number(url.searchParams.get('ms') ?? 100))
      res.once('close', () => clearTimeout(timer))
    } else if (url.pathname === '/sse') {
      res.writeHead(200, { 'content-type': 'text/event-stream' })
      res.flushHeaders()
      const limit = Number(url.searchParams.get('events') ?? Infinity)
      const padding = 'x'.repeat(Number(url.searchParams.get('size') ?? 0))
      let sent = 0
      const timer = setInterval(() => {
        res.write(`data: ${sent}${padding}\n\n`)
        if (++sent >= limit) { clearInterval(timer); res.end() }
      }, Number(url.searchParams.get('interval') ?? 50))
      res.once('close', () => clearInterval(timer))
    } else if (url.pathname !== '/slow') {
      res.end(JSON.stringify({ path: url.pathname }))
    }
  })
  // Getters, not Object.assign (which would copy today's values).
  return Object.defineProperties(upstream, {
    open: { get: () => open },
    maxOpen: { get: () => maxOpen }
  }) as CountingUpstream
}
