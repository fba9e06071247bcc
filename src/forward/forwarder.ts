// Forwarding, in one place: the pooled connections to the upstream (upstream-pool.ts, the relay's own
// HTTP/1.1 client), the adapter @fastify/reply-from calls instead of undici, cancellation, the body
// limit on the stream, and what an upstream failure means. Everything that knows reply-from's
// internals lives in this folder and nowhere else; test/forward/contract.test.ts holds the real
// @fastify/http-proxy and @fastify/reply-from to it.
//
// How a request goes:
//   1. reply-from calls `rewriteRequestHeaders` (here: `requestHeaders`): the exchange's token joins
//      the headers, the one thing reply-from is documented to hand on to the dispatcher;
//   2. reply-from calls `dispatcher.request(options, callback)`: the token names the exchange, and a
//      missing one is a named error, never a TypeError;
//   3. the exchange hears the upstream's response from the pool: when its head arrives it writes the
//      client's response head itself (no ordering with reply-from to get wrong), then hands each
//      piece of the body on as it arrives, with backpressure: of a declared length, or chunked to a
//      client that gets a chunked response too, the upstream's bytes go onto the client's socket as
//      they are, framing and all, never parsed into pieces and framed again;
//   4. a failure before the head goes back through reply-from to `onError`, which answers with a
//      named error; one after the head cuts the client's response.
import type { IncomingHttpHeaders, ServerResponse } from 'node:http'
import type { Socket } from 'node:net'
import { Transform, type Readable, type TransformCallback } from 'node:stream'
import createError from '@fastify/error'
import type { FastifyReply, FastifyRequest } from 'fastify'
import type { UpstreamConfig } from '../config.js'
import { BodyTooLarge, withHeaders, type RelayError } from '../errors.js'
import { toClientResponseHead, toUpstreamRequestHeaders } from '../lib/headers.js'
import type { ResponseHead } from '../lib/h1-response.js'
import { rewriteLocation, type UpstreamOrigin } from '../lib/redirect.js'
import { expectsContinue } from '../lib/request-rules.js'
import { UpstreamPool, type ExchangeControl, type ExchangeHandler, type UpstreamRequest } from './upstream-pool.js'
import { classifyUpstreamError, isAbort, type UpstreamFailure } from './upstream-errors.js'

/** The request header that carries an exchange's token from reply-from to the dispatcher. */
export const CHANNEL_HEADER = 'x-relay-exchange'

export const ForwarderChannelBroken = createError('RELAY_FORWARDER_CHANNEL', 'The relay lost track of the request', 500, Error, false)

export interface ForwarderOptions {
  upstream: UpstreamConfig
  /** Longest wait for the response head, and between two pieces of its body */
  timeoutMs: number
  bodyLimitBytes: number
  /** Most connections to the upstream at once; null: as many as the requests admitted */
  connections: number | null
  /** Every upstream failure, before or after the head, once: count it, log it. */
  onFailure(reply: FastifyReply, failure: UpstreamFailure, cause: unknown, midBody: boolean): void
  /** The first byte of the response body arrived, `elapsedMs` after the request did (for a response without a body: its end). */
  onFirstByte(request: FastifyRequest, statusCode: number, elapsedMs: number): void
}

type ReplyFromCallback = (err: Error | null, res?: { statusCode: number, headers: IncomingHttpHeaders, body: { destroy(): void } }) => void
type ReplyFromRequest = { method: string, path: string, headers: Record<string, string | string[] | undefined>, body?: Readable | string | Buffer | null }

/** What reply-from is told of the response: the head and body are the exchange's to write. */
const NO_BODY = { destroy () {} }

/** How a response body reaches the client. */
const WRITE_RAW = 0 // straight onto the client's socket: the bytes are framed as the client's response is
const WRITE_FRAMED = 1 // through the response, which frames them (a body that ends with its connection)

const WAITING = 0
const STREAMING = 1
const DONE = 2

/** One request's trip to the upstream and back. */
class Exchange implements ExchangeHandler {
  readonly forwarder: Forwarder
  readonly request: FastifyRequest
  readonly reply: FastifyReply
  token = ''
  state = WAITING
  /** The client left, or the relay gave up on the request: never write to the client again. */
  cancelled = false
  /** The client's response was ended at its head (HEAD, 204, 304) or by someone else */
  bodiless = false
  replyFrom: ReplyFromCallback | null = null
  statusCode = 0
  control: ExchangeControl | undefined
  #firstByte = true
  #mode = WRITE_RAW
  /** Body bytes still to come of a declared length, while the head waits to go out with the first */
  #headWith = -1
  #socket: Socket | null = null
  #resume: (() => void) | undefined

  constructor (forwarder: Forwarder, request: FastifyRequest, reply: FastifyReply) {
    this.forwarder = forwarder
    this.request = request
    this.reply = reply
  }

  cancel (): void {
    if (this.state === DONE || this.cancelled) return
    this.cancelled = true
    this.control?.cancel()
  }

  onInterim (): void {}

  onHead (head: ResponseHead): boolean {
    const { request, reply } = this
    const res = reply.raw
    const statusCode = head.statusCode
    this.state = STREAMING
    this.statusCode = statusCode
    // Someone else answered meanwhile (the shutdown's 503) or the client is gone.
    if (this.cancelled || res.headersSent || res.destroyed) {
      this.bodiless = true
      this.cancel()
      return false
    }
    const { headers } = toClientResponseHead(head.rawHeaders, request.id, this.forwarder.location, head.framing === 'length' ? head.contentLength : undefined)
    // Headers the relay put on the reply (Connection: close while draining) win over the upstream's.
    const own = reply.getHeaders()
    for (const name in own) {
      if (name !== 'x-request-id') headers.push(name, String(own[name]))
    }
    // The upstream answered before the request body was read: the client's connection cannot be reused.
    if (!request.raw.complete && own.connection === undefined) headers.push('connection', 'close')
    reply.hijack()
    res.writeHead(statusCode, headers)
    const callback = this.replyFrom
    this.replyFrom = null
    callback?.(null, { statusCode, headers: {}, body: NO_BODY })
    if (head.framing === 'none' || request.method === 'HEAD' || statusCode === 204 || statusCode === 304) {
      this.bodiless = true
      return false
    }
    this.#socket = res.socket
    if (head.framing === 'length') {
      // A body of declared length usually follows at once: the head goes out with its first piece,
      // in one write, and the rest goes onto the socket as it comes.
      this.#mode = WRITE_RAW
      this.#headWith = head.contentLength
      return false
    }
    // Node.js holds a head until the first body byte; a stream may wait seconds for the GPU's first
    // token, and clients time the wait for headers: send it now, as nginx does.
    res.flushHeaders()
    const chunkedToClient = (res as ServerResponse & { chunkedEncoding?: boolean }).chunkedEncoding === true
    if (head.framing === 'chunked') {
      // Chunked both ways: the upstream's chunks go on as they are, framing and all. To an HTTP/1.0
      // client (no chunking) their data goes on, and the connection's end ends the response.
      this.#mode = WRITE_RAW
      return chunkedToClient
    }
    // Until the connection closes: the response frames the bytes for the client.
    this.#mode = WRITE_FRAMED
    return false
  }

  onBody (bytes: Buffer): boolean {
    if (this.#firstByte) this.#onFirstByte()
    if (this.bodiless) return true
    const res = this.reply.raw
    if (this.#headWith !== -1) {
      // The first piece, with the head: the whole body ends the response in the same write.
      const whole = bytes.length === this.#headWith
      this.#headWith = -1
      if (whole) {
        res.end(bytes)
        return true
      }
      if (res.write(bytes)) return true
      res.once('drain', this.#onDrain)
      return false
    }
    if (this.#mode === WRITE_RAW) {
      const socket = this.#socket
      if (socket === null || socket.destroyed) return true
      if (socket.write(bytes)) return true
      socket.once('drain', this.#onDrain)
      return false
    }
    if (res.write(bytes)) return true
    res.once('drain', this.#onDrain)
    return false
  }

  #onDrain = (): void => { this.control?.resume() }

  onEnd (): void {
    if (this.#firstByte) this.#onFirstByte()
    this.state = DONE
    this.forwarder.settle(this)
    const res = this.reply.raw
    if (!res.destroyed && !res.writableEnded) res.end()
  }

  onError (err: Error): void {
    const wasStreaming = this.state === STREAMING
    this.state = DONE
    this.forwarder.settle(this)
    if (!wasStreaming) {
      const callback = this.replyFrom
      this.replyFrom = null
      // Through reply-from, to onError below: one way to answer a failure before the head.
      if (this.forwarder.closed) this.reply.raw.destroy()
      else if (callback !== null) callback(err)
      return
    }
    // The client already has its whole answer (HEAD, 204, 304), or left, or was answered meanwhile.
    if (this.bodiless || this.cancelled || (isAbort(err) && this.reply.raw.destroyed)) return
    // The relay closed its pool (shutdown): not the upstream's doing.
    if (this.forwarder.closed) {
      this.reply.raw.destroy()
      return
    }
    this.forwarder.onFailure(this.reply, classifyUpstreamError(err), err, true)
    // The client must see a cut, never a complete-looking response.
    this.reply.raw.destroy(err)
  }

  #onFirstByte (): void {
    this.#firstByte = false
    if (!this.cancelled) this.forwarder.onFirstByte(this.request, this.statusCode, this.reply.elapsedTime)
  }
}

/** A response head, status line and header fields, over this is refused (undici's and Node.js' default). */
const MAX_RESPONSE_HEAD_BYTES = 16 * 1024

const kExchange = Symbol('relay.exchange')
type WithExchange = FastifyRequest & { [kExchange]?: Exchange }

export class Forwarder {
  readonly timeoutMs: number
  readonly location: (value: string) => string
  /** What @fastify/http-proxy takes as its `undici` option: reply-from calls `request` */
  readonly dispatcher: { request(options: ReplyFromRequest, callback: ReplyFromCallback): void }
  readonly onFailure: ForwarderOptions['onFailure']
  readonly onFirstByte: ForwarderOptions['onFirstByte']
  readonly #pool: UpstreamPool
  readonly #bodyLimitBytes: number
  readonly #exchanges = new Map<string, Exchange>()
  #nextToken = 0
  #closed = false

  constructor (options: ForwarderOptions) {
    const { upstream, timeoutMs } = options
    this.timeoutMs = timeoutMs
    this.onFailure = options.onFailure
    this.onFirstByte = options.onFirstByte
    this.#bodyLimitBytes = options.bodyLimitBytes
    const origin: UpstreamOrigin = { origin: upstream.origin, basePath: new URL(upstream.url).pathname.replace(/\/$/, '') }
    this.location = (value) => rewriteLocation(value, origin)
    const { protocol, hostname } = upstream
    const origin_ = new URL(upstream.origin)
    this.#pool = new UpstreamPool({
      protocol,
      hostname,
      port: Number(origin_.port === '' ? (protocol === 'https:' ? 443 : 80) : origin_.port),
      maxConnections: options.connections,
      connectTimeoutMs: Math.min(10_000, timeoutMs),
      headersTimeoutMs: timeoutMs,
      // Between two pieces of a streamed body, not for the whole body: a generation may run for minutes.
      bodyTimeoutMs: timeoutMs,
      // Below uvicorn's default of 5 s: the relay closes an idle connection before the GPU server does.
      keepAliveTimeoutMs: 4_000,
      maxHeadBytes: MAX_RESPONSE_HEAD_BYTES
    })
    const pool = this.#pool
    this.dispatcher = {
      request: (opts, callback) => {
        const token = opts.headers[CHANNEL_HEADER]
        const exchange = typeof token === 'string' ? this.#exchanges.get(token) : undefined
        if (exchange === undefined) {
          callback(new ForwarderChannelBroken())
          return
        }
        this.#exchanges.delete(exchange.token)
        delete opts.headers[CHANNEL_HEADER]
        exchange.replyFrom = callback
        const raw = exchange.request.raw
        // The client waits for this before it sends the body: now the relay reads it.
        if (opts.body != null && expectsContinue(raw.headers) && !exchange.reply.raw.headersSent) exchange.reply.raw.writeContinue()
        const request: UpstreamRequest = { method: opts.method, path: opts.path, headers: opts.headers, body: opts.body }
        exchange.control = pool.request(request, exchange)
      }
    }
  }

  /** Starts a proxied request's exchange (before reply-from is involved). */
  begin (request: FastifyRequest, reply: FastifyReply): void {
    (request as WithExchange)[kExchange] = new Exchange(this, request, reply)
  }

  /** reply-from's rewriteRequestHeaders: what the upstream receives, and the exchange's token. */
  requestHeaders (request: FastifyRequest, headers: IncomingHttpHeaders): IncomingHttpHeaders {
    const { arrival } = request
    const upstreamHeaders = toUpstreamRequestHeaders(headers, {
      ip: arrival.ip,
      protocol: arrival.protocol,
      host: arrival.host,
      requestId: request.id,
      hasBody: request.body !== undefined && request.body !== null
    }) as IncomingHttpHeaders
    const exchange = (request as WithExchange)[kExchange]
    if (exchange !== undefined && !exchange.cancelled) {
      exchange.token = String(++this.#nextToken)
      this.#exchanges.set(exchange.token, exchange)
      upstreamHeaders[CHANNEL_HEADER] = exchange.token
    }
    return upstreamHeaders
  }

  /** reply-from's onError: a failure before the response head, answered with a named error. */
  onError (reply: FastifyReply, error: Error): void {
    const exchange = (reply.request as WithExchange)[kExchange]
    if (exchange?.cancelled === true) return // the client left: nobody to answer, and not the upstream's fault
    this.fail(reply, error)
  }

  fail (reply: FastifyReply, error: Error): void {
    if (reply.sent || reply.raw.headersSent) return
    const answer = this.#answerFor(reply, error)
    if (!reply.request.raw.complete) answer.headers = { ...answer.headers, connection: 'close' }
    reply.send(answer)
  }

  #answerFor (reply: FastifyReply, error: Error): RelayError {
    const own = causeWithCode(error, (code) => code === 'RELAY_BODY_TOO_LARGE' || code === 'RELAY_FORWARDER_CHANNEL')
    if (own !== undefined) return own
    const failure = classifyUpstreamError(error)
    this.onFailure(reply, failure, error, false)
    return failure.error
  }

  /** The request has ended (lifecycle): cancel its upstream request if that is still under way. */
  release (request: FastifyRequest): void {
    const exchange = (request as WithExchange)[kExchange]
    if (exchange === undefined) return
    if (exchange.token !== '') this.#exchanges.delete(exchange.token)
    exchange.cancel()
  }

  settle (exchange: Exchange): void {
    if (exchange.token !== '') this.#exchanges.delete(exchange.token)
  }

  /** A chunked body passes through, failing the stream the moment it crosses the limit. */
  limitBody (payload: Readable): Readable {
    const limit = this.#bodyLimitBytes
    let received = 0
    const limiter = new Transform({
      transform (chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback) {
        received += chunk.length
        if (received > limit) callback(withHeaders(new BodyTooLarge(limit), { connection: 'close' }))
        else callback(null, chunk)
      }
    })
    payload.on('error', (err) => limiter.destroy(err))
    return payload.pipe(limiter)
  }

  get closed (): boolean {
    return this.#closed
  }

  async close (): Promise<void> {
    this.#closed = true
    await this.#pool.close()
  }
}

function causeWithCode (err: unknown, wanted: (code: string) => boolean): RelayError | undefined {
  for (let e = err, depth = 0; e !== null && typeof e === 'object' && depth < 8; depth++) {
    const code = (e as { code?: unknown }).code
    if (typeof code === 'string' && wanted(code)) return e as RelayError
    e = (e as { cause?: unknown }).cause
  }
  return undefined
}
