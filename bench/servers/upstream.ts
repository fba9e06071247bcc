// The benchmark's node upstream (no framework): SSE with send timestamps, token streams for the
// streaming scenario, an echo, a sink for large uploads and a generator for large downloads. Standalone (no relative imports) so that any Node.js
// able to strip types, or tsx, can run it. Usage: upstream.ts <port> (0 = any); prints
// {"msg":"ready","port":N} on stdout once it listens.
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'

const JSON_BODY = '{"status":"ok","service":"bench-upstream"}' // bench/lib/systems.ts's, kept equal by test/bench/configs.test.ts
const CHUNK = Buffer.alloc(256 * 1024, 0x78)

function numberParam (url: URL, name: string, fallback: number): number {
  const value = Number(url.searchParams.get(name) ?? fallback)
  return Number.isSafeInteger(value) && value >= 0 ? value : fallback
}

/**
 * `events` events, the first at once (it leaves with the response headers), then one every
 * `interval` ms. Each carries process.hrtime.bigint() taken just before the write: CLOCK_MONOTONIC,
 * the same clock the client reads in another process on this machine.
 */
function sse (req: IncomingMessage, res: ServerResponse, events: number, interval: number): void {
  res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' })
  let sent = 0
  let timer: NodeJS.Timeout | undefined
  const next = (): void => {
    if (sent === events) {
      res.end()
      return
    }
    res.write(`data: {"i":${sent},"t":"${process.hrtime.bigint()}"}\n\n`)
    sent++
    timer = setTimeout(next, interval)
  }
  res.on('close', () => clearTimeout(timer))
  req.resume()
  next()
}

/** Bytes of each token event, `data: ` to the blank line: an LLM server's one token in JSON. */
const TOKEN_EVENT_BYTES = 60
interface TokenRun {
  streams: number
  opened: number
  sent: number
  ended: number
  cut: number
  endAt: number | undefined
  /** Of each stream cut short: when it started and how many events it had sent */
  cutShort: Array<{ started: number, sent: number, interval: number }>
}
const tokenRuns = new Map<string, TokenRun>()

/**
 * One of `streams` concurrent streams of run `run`: an event at once, then one every `interval` ms
 * (due times fixed from the start, so the rate does not drift; streams opened at different moments
 * are staggered). Once the run's last stream is in, each stream goes on for `window` ms and ends
 * with an event marked "last". Each event carries process.hrtime.bigint() (ns) taken just before the write.
 */
function tokens (req: IncomingMessage, res: ServerResponse, url: URL): void {
  const id = url.searchParams.get('run') ?? ''
  const run = tokenRuns.get(id) ?? { streams: numberParam(url, 'streams', 1), opened: 0, sent: 0, ended: 0, cut: 0, endAt: undefined, cutShort: [] }
  tokenRuns.set(id, run)
  const interval = Math.max(1, numberParam(url, 'interval', 50))
  const windowMs = numberParam(url, 'window', 5000)
  res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' })
  if (++run.opened === run.streams) run.endAt = performance.now() + windowMs
  const started = performance.now()
  let i = 0
  let timer: NodeJS.Timeout | undefined
  const next = (): void => {
    const last = run.endAt !== undefined && performance.now() >= run.endAt
    const head = `data: {"i":${i},"t":${process.hrtime.bigint()},"token":"`
    const tail = `"${last ? ',"last":true' : ''}}\n\n`
    res.write(head + 'x'.repeat(Math.max(1, TOKEN_EVENT_BYTES - head.length - tail.length)) + tail)
    run.sent++
    i++
    if (last) {
      run.ended++
      res.end()
      return
    }
    timer = setTimeout(next, started + i * interval - performance.now())
  }
  res.on('close', () => {
    clearTimeout(timer)
    if (res.writableEnded) return
    run.cut++
    run.cutShort.push({ started, sent: i, interval })
  })
  req.resume()
  next()
}

/** `bytes` bytes of 'x', written as fast as the reader takes them. */
function blob (res: ServerResponse, bytes: number): void {
  res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': bytes })
  let left = bytes
  const pump = (): void => {
    while (left > 0) {
      const n = Math.min(left, CHUNK.length)
      left -= n
      if (!res.write(n === CHUNK.length ? CHUNK : CHUNK.subarray(0, n))) {
        res.once('drain', pump)
        return
      }
    }
    res.end()
  }
  pump()
}

function sink (req: IncomingMessage, res: ServerResponse): void {
  let bytes = 0
  req.on('data', (chunk: Buffer) => { bytes += chunk.length })
  req.on('end', () => {
    const body = `{"bytes":${bytes}}`
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) })
    res.end(body)
  })
  req.on('error', () => res.destroy())
}

const server = createServer({ keepAliveTimeout: 120_000 }, (req, res) => {
  const url = new URL(req.url ?? '/', 'http://upstream.invalid')
  switch (`${req.method} ${url.pathname}`) {
    case 'GET /json':
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': JSON_BODY.length })
      res.end(JSON_BODY)
      return
    case 'GET /sse':
      sse(req, res, numberParam(url, 'events', 10), numberParam(url, 'interval', 10))
      return
    case 'GET /tokens':
      tokens(req, res, url)
      return
    case 'GET /tokens/stats': {
      // What the upstream sent in a run (the client's received count is compared with it), and the
      // events that streams cut short would have carried up to the run's end; then forgotten.
      const id = url.searchParams.get('run') ?? ''
      const run = tokenRuns.get(id)
      const endAt = run?.endAt ?? performance.now()
      const unsent = run?.cutShort.reduce((n, c) => n + Math.max(0, Math.ceil((endAt - c.started) / c.interval) + 1 - c.sent), 0)
      const body = JSON.stringify(run === undefined ? {} : { ...run, cutShort: undefined, unsent })
      tokenRuns.delete(id)
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) })
      res.end(body)
      return
    }
    case 'GET /blob':
      req.resume()
      blob(res, numberParam(url, 'bytes', 0))
      return
    case 'POST /sink':
    case 'PUT /sink':
      sink(req, res)
      return
    case 'POST /echo':
      res.writeHead(200, { 'content-type': req.headers['content-type'] ?? 'application/octet-stream' })
      req.pipe(res)
      return
    default:
      req.resume()
      res.writeHead(404, { 'content-type': 'application/json', 'content-length': 2 })
      res.end('{}')
  }
})
server.maxRequestsPerSocket = 0
server.listen(Number(process.argv[2] ?? 0), '127.0.0.1', () => {
  console.log(JSON.stringify({ msg: 'ready', port: (server.address() as AddressInfo).port }))
})
for (const signal of ['SIGTERM', 'SIGINT'] as const) process.on(signal, () => process.exit(0))
