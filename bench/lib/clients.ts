// The benchmark's own clients, run in the harness process (on the load generator's CPUs): SSE
// streams timed against the upstream's send times, many concurrent token streams, 1 GB transfers,
// and idle keep-alive connections.
import { connect, type Socket } from 'node:net'
import { ChunkedDecoder, parseHead, responseEnd } from '../../harness/raw-http.js'
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

/** A token event of bench/servers/upstream.ts's /tokens: `data: {"i":N,"t":<ns>,"token":"…"[,"last":true]}`. */
export function parseTokenEvent (event: string): { index: number, sentNs: number, last: boolean } {
  const m = /^data: \{"i":(\d+),"t":(\d+),/.exec(event)
  if (m === null) throw new Error(`not a token event: ${JSON.stringify(event.slice(0, 80))}`)
  return { index: Number(m[1]), sentNs: Number(m[2]), last: event.endsWith(',"last":true}') }
}

export interface TokenStreamsOptions {
  /** The system's base URL (the upstream's own for the no-proxy row) */
  url: string
  streams: number
  intervalMs: number
  /** How long every stream goes on once all are open: the measured window */
  windowMs: number
  /** A name of this run only: the upstream counts its streams and events under it */
  run: string
  /** Called synchronously when the last stream's first event arrives, and when the first "last" event does */
  onWindowStart?: () => void
  onWindowEnd?: () => void
  /** Most streams waiting for their first event at once */
  maxPending?: number
  /** How long every stream may take to open (default 30 s + 20 ms per stream) */
  openTimeoutMs?: number
}

export interface TokenStreamsResult {
  /** Events received over the whole run, every stream */
  received: number
  /** Events whose index was not the next one due on their stream */
  outOfOrder: number
  /** Streams that ended without their last event or without the end of the chunked body */
  cut: number
  /** Receipt − the upstream's send time of every event received in the window, µs */
  windowDelaysUs: Float64Array
  windowMs: number
  /** From the first connection to the last stream's first event */
  openMs: number
}

/**
 * `streams` concurrent token streams, each on a connection of its own (a user in a chat), opened at
 * most one per intervalMs / streams (so their events are spread over the interval) and at most
 * `maxPending` at a time. The window runs from the moment every stream has had its first event to
 * the first stream's last event; arrivals are stamped with CLOCK_MONOTONIC, the clock of the
 * upstream's send stamps. Rejects when a stream answers anything but 200 or when not every stream
 * is open within `openTimeoutMs` (a proxy that queues streams would never hold them all at once).
 */
export function runTokenStreams (o: TokenStreamsOptions): Promise<TokenStreamsResult> {
  const { hostname, port, host } = new URL(o.url)
  const request = `GET /tokens?run=${encodeURIComponent(o.run)}&streams=${o.streams}&interval=${o.intervalMs}&window=${o.windowMs} HTTP/1.1\r\nHost: ${host}\r\nAccept: text/event-stream\r\n\r\n`
  const sockets = new Set<Socket>()
  let delays = new Float64Array(o.streams * (Math.ceil(o.windowMs / o.intervalMs) + 4))
  let inWindow = 0
  let received = 0
  let outOfOrder = 0
  let cut = 0
  let open = 0
  let pending = 0
  let started = 0
  let ended = 0
  let windowStart: number | undefined
  let windowEnd: number | undefined
  let failed = false
  const t0 = performance.now()
  const t0Ns = Number(process.hrtime.bigint())
  return new Promise((resolve, reject) => {
    const fail = (why: string): void => {
      failed = true
      clearTimeout(deadline)
      for (const socket of sockets) socket.destroy()
      reject(new Error(`${o.streams} streams through ${o.url}: ${why}`))
    }
    let deadline = setTimeout(() => fail(`${open} of them open after ${((performance.now() - t0) / 1000).toFixed(1)} s`), o.openTimeoutMs ?? 30_000 + 20 * o.streams)
    const onEvent = (stream: { next: number, last: boolean }, event: string, now: number): void => {
      const { index, sentNs, last } = parseTokenEvent(event)
      received++
      if (index !== stream.next) outOfOrder++
      stream.next = index + 1
      if (index === 0) {
        pending--
        if (++open === o.streams) {
          windowStart = now
          clearTimeout(deadline)
          deadline = setTimeout(() => fail(`${o.streams - ended} still running 60 s after the window`), o.windowMs + 60_000)
          o.onWindowStart?.()
        }
        pump()
      } else if (windowStart !== undefined && windowEnd === undefined) {
        if (last) {
          windowEnd = now
          o.onWindowEnd?.()
        } else {
          if (inWindow === delays.length) {
            const bigger = new Float64Array(delays.length * 2)
            bigger.set(delays)
            delays = bigger
          }
          delays[inWindow++] = (now - sentNs) / 1000
        }
      }
      stream.last = last
    }
    const openOne = (): void => {
      const socket = connect(Number(port), hostname)
      sockets.add(socket)
      const stream = { next: 0, last: false, complete: false }
      let head: string | undefined = ''
      let decoder: ChunkedDecoder | undefined
      let sse = ''
      socket.setNoDelay(true)
      socket.setEncoding('latin1')
      socket.on('connect', () => socket.write(request))
      socket.on('data', (chunk: string) => {
        const now = Number(process.hrtime.bigint())
        let body = chunk
        if (head !== undefined) {
          head += chunk
          const parsed = parseHead(head)
          if (parsed.headerEnd < 0) return
          if (parsed.statusCode !== 200) return fail(`a stream was answered ${JSON.stringify(head.slice(0, Math.min(parsed.headerEnd, 120)))}`)
          if (parsed.headers['transfer-encoding'] === 'chunked') decoder = new ChunkedDecoder()
          body = head.slice(parsed.headerEnd + 4)
          head = undefined
        }
        try {
          sse += decoder === undefined ? body : decoder.push(body)
          for (let end = sse.indexOf('\n\n'); end >= 0; end = sse.indexOf('\n\n')) {
            onEvent(stream, sse.slice(0, end), now)
            sse = sse.slice(end + 2)
          }
        } catch (err) {
          return fail((err as Error).message)
        }
        if (decoder?.done === true) {
          stream.complete = stream.last
          socket.destroy()
        }
      })
      socket.on('error', () => {}) // close follows
      socket.on('close', () => {
        sockets.delete(socket)
        if (!(stream.complete || (decoder === undefined && stream.last))) cut++
        if (stream.next === 0 && !failed) return fail('a stream closed before its first event')
        if (++ended === o.streams) {
          clearTimeout(deadline)
          const windowMs = windowStart !== undefined && windowEnd !== undefined ? (windowEnd - windowStart) / 1e6 : 0
          resolve({ received, outOfOrder, cut, windowDelaysUs: delays.subarray(0, inWindow), windowMs, openMs: windowStart === undefined ? NaN : windowStart / 1e6 - t0Ns / 1e6 })
        } else if (open < o.streams) {
          pump()
        }
      })
    }
    let armed = false
    const pump = (): void => {
      if (failed) return
      const spacing = o.intervalMs / o.streams
      while (started < o.streams && pending < (o.maxPending ?? 64) && performance.now() - t0 >= started * spacing) {
        started++
        pending++
        openOne()
      }
      if (started < o.streams && pending < (o.maxPending ?? 64) && !armed) {
        armed = true
        setTimeout(() => { armed = false; pump() }, 1)
      }
    }
    pump()
  })
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
