// The Node.js HTTP server under Fastify (its serverFactory), with what a public endpoint needs of
// its connections that Node.js does not do by itself, the same on Node.js 20 and 24:
//
// - one request at a time per connection, as nginx does: a pipelined request is handed to Fastify
//   only once the response before it has been sent, so a connection cannot make the relay open many
//   upstream requests at once, and nothing queued behind a response that closes the connection (a
//   refusal) is ever handled;
// - a client that goes away (closes, or half-closes while its response is under way) cancels what it
//   started: its socket is destroyed, so the request under way ends as aborted;
// - a response the client stops reading is cut after RELAY_SEND_TIMEOUT_SECONDS without progress;
// - `Expect`, `CONNECT` and Host-less requests reach Fastify (which answers them like any other, with
//   a request id, a log line and a count) instead of Node.js answering them on its own;
// - a connection closed after an answer is closed gracefully: what the client still sends (a body
//   the relay refused) is read and discarded for a moment, so that the answer is not lost to a reset.
import { createServer, ServerResponse, type IncomingMessage, type RequestListener, type Server } from 'node:http'
import type { Duplex } from 'node:stream'
import type { Socket } from 'node:net'

/** Header fields a request may have (Apache's LimitRequestFields); more get 431. */
export const MAX_HEADER_FIELDS = 100
/** Requests one connection may have waiting behind the one being served; past it, it is closed. */
export const MAX_PIPELINED = 32
/** A closed-after-answer connection keeps being read for at most this long … */
const LINGER_MS = 10_000
/** … and at most this long without anything arriving. */
const LINGER_IDLE_MS = 2_000

export interface HttpServerOptions {
  headersTimeoutMs: number
  requestTimeoutMs: number
  keepAliveTimeoutMs: number
  /** Longest a response may wait for the client to read it; 0 turns the check off. */
  sendTimeoutMs: number
  /** Called before the server cuts a response the client stopped reading. */
  onStalled(res: ServerResponse): void
}

const kQueued = Symbol('relay.pipelined')
const kClosing = Symbol('relay.closing')
const kStalled = Symbol('relay.stalled')

type RelaySocket = Socket & {
  [kQueued]?: number
  [kClosing]?: boolean
  [kStalled]?: { since: number, length: number }
  _httpMessage?: ServerResponse | null
}

export function createHttpServer (handler: RequestListener, options: HttpServerOptions): Server {
  const server = createServer({
    // Fastify answers a Host-less HTTP/1.1 request itself (400, with a request id and a log line).
    requireHostHeader: false,
    headersTimeout: options.headersTimeoutMs,
    requestTimeout: options.requestTimeoutMs,
    keepAliveTimeout: options.keepAliveTimeoutMs,
    // Node checks the two timeouts every connectionsCheckingInterval: short enough to mean something.
    connectionsCheckingInterval: Math.min(1000, Math.max(100, Math.floor(options.headersTimeoutMs / 4)))
  })
  // Node.js keeps the first maxHeadersCount fields and drops the rest without a word, framing headers
  // included: keep one more than allowed, so that Fastify sees the request is over the limit.
  server.maxHeadersCount = MAX_HEADER_FIELDS + 1

  const dispatch = (req: IncomingMessage, res: ServerResponse): void => {
    const socket = req.socket as RelaySocket
    // The response before this one closed the connection: nothing after it is handled.
    if (socket[kClosing] === true) return
    if (res.socket !== null) {
      handler(req, res)
      return
    }
    // Pipelined behind a response still under way: Node.js hands this one the socket (and emits
    // 'socket') when that response has been sent, and never when it closed the connection.
    const queued = (socket[kQueued] ?? 0) + 1
    if (queued > MAX_PIPELINED) {
      socket.destroy()
      return
    }
    socket[kQueued] = queued
    res.once('socket', () => {
      socket[kQueued] = (socket[kQueued] as number) - 1
      if (socket[kClosing] !== true) handler(req, res)
    })
  }

  server.on('request', dispatch)
  // The relay sends `100 Continue` itself, when it starts reading the body: a request refused before
  // (413, 429, 503) gets its answer instead.
  server.on('checkContinue', dispatch)
  // Fastify answers other expectations with 417.
  server.on('checkExpectation', dispatch)
  server.on('connect', (req: IncomingMessage, socket: Duplex) => answerConnect(handler, req, socket as Socket))

  const connections = new Set<RelaySocket>()
  server.on('connection', (socket: RelaySocket) => {
    connections.add(socket)
    socket.once('close', () => connections.delete(socket))
    // The client half-closed while its response is under way: it is gone (nginx's view too).
    socket.on('end', () => {
      const res = socket._httpMessage
      if (res != null && !res.writableEnded) socket.destroy()
    })
    // Node.js calls this after a response that closes the connection.
    socket.destroySoon = function lingeringClose (this: RelaySocket) { linger(this) }
  })

  if (options.sendTimeoutMs > 0) {
    const sweep = setInterval(() => cutStalled(connections, options), Math.min(1000, Math.max(50, Math.floor(options.sendTimeoutMs / 4))))
    sweep.unref()
    server.once('close', () => clearInterval(sweep))
  }
  return server
}

/**
 * A response is stalled while the socket holds more than its high-water mark and none of it leaves:
 * the writer (undici, Fastify) waits for 'drain', so nothing is added until the client reads.
 */
function cutStalled (connections: Set<RelaySocket>, options: HttpServerOptions): void {
  const now = Date.now()
  for (const socket of connections) {
    if (!socket.writableNeedDrain) {
      socket[kStalled] = undefined
      continue
    }
    const stalled = socket[kStalled]
    const length = socket.writableLength
    if (stalled === undefined || length < stalled.length) {
      socket[kStalled] = { since: now, length }
    } else if (now - stalled.since >= options.sendTimeoutMs) {
      const res = socket._httpMessage
      if (res != null) options.onStalled(res)
      socket.destroy()
    }
  }
}

/** Half-closes, then reads and discards what still arrives, for a bounded time, before closing. */
function linger (socket: RelaySocket): void {
  if (socket[kClosing] === true) return
  socket[kClosing] = true
  if (socket.destroyed) return
  socket.end()
  const started = Date.now()
  let lastRead = socket.bytesRead
  let idleSince = started
  const timer = setInterval(() => {
    const now = Date.now()
    if (socket.bytesRead !== lastRead) {
      lastRead = socket.bytesRead
      idleSince = now
    }
    if (now - started >= LINGER_MS || now - idleSince >= LINGER_IDLE_MS) socket.destroy()
  }, 250)
  timer.unref()
  socket.once('close', () => clearInterval(timer))
  // The client read the answer and closed its side: nothing more will come.
  socket.once('end', () => socket.destroy())
  if (socket.readableEnded) socket.destroy()
}

/**
 * Node.js closes a CONNECT request's socket when nobody listens for it, without an answer. Hand it to
 * Fastify as an ordinary request, whose response closes the connection: it answers 405.
 */
function answerConnect (handler: RequestListener, req: IncomingMessage, socket: Socket): void {
  socket.on('error', () => {})
  const res = new ServerResponse(req)
  res.shouldKeepAlive = false
  res.assignSocket(socket)
  res.once('finish', () => {
    res.detachSocket(socket)
    // What Node.js does for the responses it made itself: 'close' follows 'finish'.
    process.nextTick(() => res.emit('close'))
    // Node.js no longer reads this socket: discard what arrives while lingering.
    socket.resume()
    linger(socket as RelaySocket)
  })
  handler(req, res)
}
