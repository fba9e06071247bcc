// The benchmark's own clients, run in the harness process (on the load generator's CPUs): SSE
// streams timed against the upstream's send times, 1 GB transfers, and idle keep-alive connections.
import { request } from 'node:http'
import { connect, type Socket } from 'node:net'

export interface SseTiming {
  /** Request sent (before the connection is opened) → first event received, ms */
  firstEventMs: number
  /** For each event after the first: received − sent by the upstream, ms */
  eventDelaysMs: number[]
}

/** Splits an SSE byte stream into events; returns the events completed and the remainder. */
export function splitSseEvents (buffered: string): { events: string[], rest: string } {
  const parts = buffered.split('\n\n')
  const rest = parts.pop() ?? ''
  return { events: parts.filter((p) => p.trim() !== ''), rest }
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
 * CLOCK_MONOTONIC, the clock process.hrtime reads here, so send and receive times compare directly.
 */
export function timeSseStream (baseUrl: string, events: number, intervalMs: number, timeoutMs = 10_000): Promise<SseTiming> {
  return new Promise((resolve, reject) => {
    const started = process.hrtime.bigint()
    let firstEventMs = NaN
    const eventDelaysMs: number[] = []
    let received = 0
    let buffered = ''
    const req = request(`${baseUrl}/sse?events=${events}&interval=${intervalMs}`, { agent: false, timeout: timeoutMs }, (res) => {
      if (res.statusCode !== 200) {
        reject(new Error(`SSE through ${baseUrl}: status ${res.statusCode}`))
        res.resume()
        return
      }
      res.setEncoding('utf8')
      res.on('data', (chunk: string) => {
        const now = process.hrtime.bigint()
        const split = splitSseEvents(buffered + chunk)
        buffered = split.rest
        for (const event of split.events) {
          const { index, sentNs } = parseSseEvent(event)
          if (index !== received) {
            req.destroy(new Error(`SSE through ${baseUrl}: event ${index} arrived where ${received} was due`))
            return
          }
          if (received === 0) firstEventMs = Number(now - started) / 1e6
          else eventDelaysMs.push(Number(now - sentNs) / 1e6)
          received++
        }
      })
      res.on('end', () => {
        if (received !== events) reject(new Error(`SSE through ${baseUrl}: ${received} of ${events} events arrived`))
        else resolve({ firstEventMs, eventDelaysMs })
      })
      res.on('error', reject)
    })
    req.on('timeout', () => req.destroy(new Error(`SSE through ${baseUrl} timed out`)))
    req.on('error', reject)
    req.end()
  })
}

const CHUNK = Buffer.alloc(256 * 1024, 0x79)

export interface TransferProgress {
  /** Called as bytes pass, often; checkpoint logic is the caller's */
  onBytes?: (transferred: number) => void
}

/** Status and Content-Length of a response head (the bytes before the blank line). */
export function parseResponseHead (head: string): { status: number, contentLength: number | undefined } {
  const status = /^HTTP\/1\.[01] (\d{3})/.exec(head)
  if (status === null) throw new Error(`not an HTTP/1.1 response: ${JSON.stringify(head.slice(0, 80))}`)
  const length = /\r\ncontent-length:\s*(\d+)/i.exec(head)
  return { status: Number(status[1]), contentLength: length === null ? undefined : Number(length[1]) }
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
        const end = head.indexOf('\r\n\r\n')
        if (end < 0) return
        const { status, contentLength } = parseResponseHead(head.slice(0, end + 2))
        if (contentLength === undefined) {
          socket.destroy()
          reject(new Error(`${baseUrl} answered without Content-Length: ${head.slice(0, end)}`))
          return
        }
        parsed = { status, contentLength }
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

/** Where a complete HTTP/1.1 response with a Content-Length ends in `data`, or -1. */
export function responseEnd (data: string): number {
  const headerEnd = data.indexOf('\r\n\r\n')
  if (headerEnd < 0) return -1
  const length = /\r\ncontent-length:\s*(\d+)/i.exec(data.slice(0, headerEnd))
  if (length === null) throw new Error(`a response without Content-Length: ${data.slice(0, headerEnd)}`)
  const end = headerEnd + 4 + Number(length[1])
  return data.length >= end ? end : -1
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
