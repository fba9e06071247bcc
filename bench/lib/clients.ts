// The benchmark's own clients, run in the harness process (on the load generator's CPUs): SSE
// streams timed against the upstream's send times, 1 GB transfers, and idle keep-alive connections.
import { connect, type Socket } from 'node:net'
import { parseHead, responseEnd } from '../../harness/raw-http.js'
import { openStream } from '../../harness/sse.js'

export interface SseTiming {
  /** Request sent (before the connection is opened) → first event received, ms */
  firstEventMs: number
  /** For each event after the first: received − sent by the upstream, ms */
  eventDelaysMs: number[]
}

/** The upstream's send time (process.hrtime.bigint(), ns) out of `data: {"i":N,"t":"..."}`. */
export function parseSseEvent (event: string): { index: number, sentNs: bigint } {
  const data = event.split('\n').find((line) => line.startsWith('data: '))
  if (data === undefined) throw new Error(`an SSE event without data: ${JSON.stringify(event)}`)
  const parsed = JSON.parse(data.slice(6)) as { i: number, t: string }
  return { index: parsed.i, sentNs: BigInt(parsed.t) }
}

/**
 * One stream on a fresh connection (a user opening a chat). The upstream stamps each event with
 * CLOCK_MONOTONIC, the clock harness/sse.ts stamps arrivals with, so send and receive times compare directly.
 */
export async function timeSseStream (baseUrl: string, events: number, intervalMs: number, timeoutMs = 10_000): Promise<SseTiming> {
  const stream = await openStream(`${baseUrl}/sse?events=${events}&interval=${intervalMs}`, timeoutMs)
  if (stream.status !== 200) throw new Error(`SSE through ${baseUrl}: status ${stream.status}`)
  const { complete } = await stream.done
  if (!complete || stream.events.length !== events) throw new Error(`SSE through ${baseUrl}: ${stream.events.length} of ${events} events arrived`)
  const eventDelaysMs: number[] = []
  for (const [i, event] of stream.events.entries()) {
    const { index, sentNs } = parseSseEvent(event.text)
    if (index !== i) throw new Error(`SSE through ${baseUrl}: event ${index} arrived where ${i} was due`)
    if (i > 0) eventDelaysMs.push(Number(event.receivedNs - sentNs) / 1e6)
  }
  return { firstEventMs: stream.events[0]?.at ?? NaN, eventDelaysMs }
}

const CHUNK = Buffer.alloc(256 * 1024, 0x79)

export interface TransferProgress {
  /** Called as bytes pass, often; checkpoint logic is the caller's */
  onBytes?: (transferred: number) => void
}

/**
 * A raw HTTP/1.1 exchange on a fresh TCP connection: node:http's client parses a 1 GB body at a
 * fraction of the speed the proxies move it, and the client must not be the bottleneck. `send`
 * writes the request; the response body is counted, not kept (only the first 64 KB are).
 */
function exchange (baseUrl: string, send: (socket: Socket) => void, onBody: (received: number) => void): Promise<{ status: number, contentLength: number, body: string }> {
  const { hostname, port } = new URL(baseUrl)
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), hostname)
    let head = ''
    let parsed: { status: number, contentLength: number } | undefined
    let received = 0
    let body = ''
    const finish = (): void => {
      socket.destroy()
      resolve({ ...(parsed as { status: number, contentLength: number }), body })
    }
    socket.on('connect', () => send(socket))
    socket.on('data', (chunk: Buffer) => {
      let data = chunk
      if (parsed === undefined) {
        head += chunk.toString('latin1')
        const { statusCode: status, headers, headerEnd: end } = parseHead(head)
        if (end < 0) return
        const length = headers['content-length']
        if (Number.isNaN(status) || length === undefined) {
          socket.destroy()
          reject(new Error(`${baseUrl} answered ${Number.isNaN(status) ? 'something that is not HTTP/1.1' : 'without Content-Length'}: ${JSON.stringify(head.slice(0, Math.min(end, 200)))}`))
          return
        }
        parsed = { status, contentLength: Number(length) }
        data = chunk.subarray(chunk.length - (head.length - end - 4))
      }
      received += data.length
      if (body.length < 65536) body += data.toString('latin1')
      onBody(received)
      if (received >= parsed.contentLength) finish()
    })
    socket.on('error', reject)
    socket.on('close', () => {
      if (parsed === undefined || received < parsed.contentLength) {
        reject(new Error(`${baseUrl}: the connection closed after ${received} of ${parsed?.contentLength ?? '?'} response bytes`))
      }
    })
  })
}

/** POSTs `bytes` bytes (declared Content-Length) to /sink and checks the upstream counted them all. Resolves with the seconds it took. */
export async function upload (baseUrl: string, bytes: number, progress: TransferProgress = {}): Promise<number> {
  const started = performance.now()
  const { host } = new URL(baseUrl)
  const answer = await exchange(baseUrl, (socket) => {
    socket.write(`POST /sink HTTP/1.1\r\nHost: ${host}\r\nContent-Type: application/octet-stream\r\nContent-Length: ${bytes}\r\n\r\n`)
    let sent = 0
    const pump = (): void => {
      while (sent < bytes) {
        const n = Math.min(CHUNK.length, bytes - sent)
        sent += n
        progress.onBytes?.(sent)
        if (!socket.write(n === CHUNK.length ? CHUNK : CHUNK.subarray(0, n))) {
          socket.once('drain', pump)
          return
        }
      }
    }
    pump()
  }, () => {})
  if (answer.status !== 200) throw new Error(`upload through ${baseUrl}: status ${answer.status} ${answer.body.slice(0, 200)}`)
  const counted = (JSON.parse(answer.body) as { bytes: number }).bytes
  if (counted !== bytes) throw new Error(`upload through ${baseUrl}: the upstream received ${counted} of ${bytes} bytes`)
  return (performance.now() - started) / 1000
}

/** GETs /blob of `bytes` bytes and checks every byte arrived. Resolves with the seconds it took. */
export async function download (baseUrl: string, bytes: number, progress: TransferProgress = {}): Promise<number> {
  const started = performance.now()
  const { host } = new URL(baseUrl)
  const answer = await exchange(baseUrl, (socket) => {
    socket.write(`GET /blob?bytes=${bytes} HTTP/1.1\r\nHost: ${host}\r\n\r\n`)
  }, (received) => progress.onBytes?.(received))
  if (answer.status !== 200) throw new Error(`download through ${baseUrl}: status ${answer.status}`)
  if (answer.contentLength !== bytes) throw new Error(`download through ${baseUrl}: Content-Length ${answer.contentLength}, expected ${bytes}`)
  return (performance.now() - started) / 1000
}

export interface IdleConnections {
  sockets: Socket[]
  /** Sockets that closed since they were opened (must stay 0 while measuring) */
  closed: () => number
  close: () => void
}

/**
 * Opens `count` connections, sends one GET on each (at most `concurrency` at a time, so the proxy
 * needs few upstream connections) and keeps them open and idle. Rejects unless every answer is 200.
 */
export async function openIdleConnections (port: number, path: string, count: number, concurrency = 20): Promise<IdleConnections> {
  const sockets: Socket[] = []
  let closed = 0
  let closing = false
  const one = (): Promise<void> => new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1')
    sockets.push(socket)
    let data = ''
    socket.setEncoding('latin1')
    socket.on('close', () => { if (!closing) closed++ })
    socket.on('error', reject)
    socket.once('connect', () => socket.write(`GET ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nConnection: keep-alive\r\n\r\n`))
    const onData = (chunk: string): void => {
      data += chunk
      try {
        if (responseEnd(data) < 0) return
      } catch (err) {
        reject(err)
        return
      }
      socket.off('data', onData)
      if (!data.startsWith('HTTP/1.1 200')) reject(new Error(`an idle connection's request got: ${data.split('\r\n')[0]}`))
      else resolve()
    }
    socket.on('data', onData)
  })
  let next = 0
  const workers = Array.from({ length: Math.min(concurrency, count) }, async () => {
    while (next < count) {
      next++
      await one()
    }
  })
  const close = (): void => {
    closing = true
    for (const s of sockets) s.destroy()
  }
  try {
    await Promise.all(workers)
  } catch (err) {
    close()
    throw err
  }
  return { sockets, closed: () => closed, close }
}
