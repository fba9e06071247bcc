// Real upstream servers on loopback ephemeral ports, one per behaviour the relay must survive.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import { createServer as createNetServer, type AddressInfo, type Server as NetServer, type Socket } from 'node:net'
import { once } from 'node:events'
import { createDemoUpstream } from '../../dev/demo-upstream.js'

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

/** A loopback port nothing listens on: connecting to it is refused. */
export async function refusedPort (): Promise<number> {
  const server = createNetServer()
  const port = await listen(server)
  server.close()
  await once(server, 'close')
  return port
}

/** Resolves when `predicate` holds, polling; rejects after `timeoutMs`. */
export async function waitFor (predicate: () => boolean | Promise<boolean>, timeoutMs = 5000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!(await predicate())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
}
