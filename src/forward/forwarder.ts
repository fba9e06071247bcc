// Forwarding, in one place: the pooled connection to the upstream, the adapter @fastify/reply-from
// calls instead of undici, cancellation, the body limit on the stream, and what an upstream failure
// means. Everything that knows undici's or reply-from's internals lives in this folder and nowhere
// else; test/forward/contract.test.ts holds the real @fastify/http-proxy and @fastify/reply-from to it.
//
// How a request goes:
//   1. reply-from calls `rewriteRequestHeaders` (here: `requestHeaders`): the exchange's token joins
//      the headers, the one thing reply-from is documented to hand on to the dispatcher;
//   2. reply-from calls `dispatcher.request(options, callback)`: the token names the exchange, and a
//      missing one is a named error, never a TypeError;
//   3. the exchange is undici's dispatch handler: when the upstream's status and headers arrive it
//      writes the response head into the client's response itself (no ordering with reply-from to get
//      wrong) and then each body chunk straight into it, with backpressure, without an intermediate
//      stream: the largest single saving on the hot path;
//   4. a failure before the head goes back through reply-from to `onError`, which answers with a
//      named error; one after the head cuts the client's response.
import type { IncomingHttpHeaders } from 'node:http'
import { Transform, type Readable, type TransformCallback } from 'node:stream'
import createError from '@fastify/error'
import { Pool, type Dispatcher } from 'undici'
import type { FastifyReply, FastifyRequest } from 'fastify'
import type { UpstreamConfig } from '../config.js'
import { BodyTooLarge, withHeaders, type RelayError } from '../errors.js'
import { toClientResponseHead, toUpstreamRequestHeaders } from '../lib/headers.js'
import { rewriteLocation, type UpstreamOrigin } from '../lib/redirect.js'
import { expectsContinue } from '../lib/request-rules.js'
import { upstreamConnector } from './connector.js'
import { INTERIM_TIMEOUT, classifyUpstreamError, isAbort, type UpstreamFailure } from './upstream-errors.js'

/** The request header that carries an exchange's token from reply-from to the dispatcher. */
export const CHANNEL_HEADER = 'x-relay-exchange'

export const ForwarderChannelBroken = createError('RELAY_FORWARDER_CHANNEL', 'The relay lost track of the request', 500, Error, false)
const InterimTimeout = createError(INTERIM_TIMEOUT, 'The upstream sent interim responses past the timeout', 504, Error, false)

export interface ForwarderOptions {
  upstream: UpstreamConfig
  /** Longest wait for the response head, and between two chunks of its body */
  timeoutMs: number
  bodyLimitBytes: number
  /** Most connections to the upstream at once; null: as many as the requests admitted */
  connections: number | null
  /** Every upstream failure, before or after the head, once: count it, log it. */
  onFailure(reply: FastifyReply, failure: UpstreamFailure, cause: unknown, midBody: boolean): void
  /** The first byte of the response body arrived, `elapsedMs` after the request did (for a response without a body: its end). */
  onFirstByte(request: FastifyRequest, statusCode: number, elapsedMs: number): void
  /** undici was not what the forwarder expects (see connector.ts). */
  onWarning(message: string): void
}

type ReplyFromCallback = (err: Error | null, res?: { statusCode: number, headers: IncomingHttpHeaders, body: { destroy(): void } }) => void
type ReplyFromRequest = Dispatcher.RequestOptions & { headers: Record<string, string | string[] | undefined> }

/** What reply-from is told of the response: the head and body are the exchange's to write. */
const NO_BODY = { destroy () {} }

const WAITING = 0
const STREAMING = 1
const DONE = 2

/** One request's trip to the upstream and back; undici's dispatch handler for it. */
class Exchange implements Dispatcher.DispatchHandler {
  readonly forwarder: Forwarder
  readonly request: FastifyRequest
  readonly reply: FastifyReply
  token = ''
  state = WAITING
  /** The client left, or the relay gave up on the request: never write to the client again. */
  cancelled = false
  /** The response needs no body (HEAD, 204, 304): whatever undici still reports is not the client's. */
  bodiless = false
  replyFrom: ReplyFromCallback | null = null
  statusCode = 0
  #firstByte = true
  #abort: ((err?: Error) => void) | null = null
  #resume: (() => void) | null = null
  #dispatchedAt = 0
  #interim: NodeJS.Timeout | undefined

  constructor (forwarder: Forwarder, request: FastifyRequest, reply: FastifyReply) {
    this.forwarder = forwarder
    this.request = request
    this.reply = reply
  }

  dispatch (pool: Pool, options: Dispatcher.DispatchOptions): void {
    this.#dispatchedAt = Date.now()
    pool.dispatch(options, this)
  }

  cancel (): void {
    if (this.state === DONE || this.cancelled) return
    this.cancelled = true
    this.#abort?.()
  }

  onConnect (abort: (err?: Error) => void): void {
    if (this.cancelled) abort()
    else this.#abort = abort
  }

  onHeaders (statusCode: number, rawHeaders: Buffer[], resume: () => void): boolean {
    if (statusCode < 200) {
      this.#onInterim()
      return true
    }
    clearTimeout(this.#interim)
    const { request, reply } = this
    const res = reply.raw
    this.state = STREAMING
    this.statusCode = statusCode
    // Someone else answered meanwhile (the shutdown's 503) or the client is gone.
    if (this.cancelled || res.headersSent || res.destroyed) {
      this.bodiless = true
      this.#abort?.()
      return false
    }
    const head = toClientResponseHead(rawHeaders, request.id, this.forwarder.location)
    const headers = head.headers
    // Headers the relay put on the reply (Connection: close while draining) win over the upstream's.
    const own = reply.getHeaders()
    for (const name in own) {
      if (name !== 'x-request-id') headers.push(name, String(own[name]))
    }
    // The upstream answered before the request body was read: the client's connection cannot be reused.
    if (!request.raw.complete && own.connection === undefined) headers.push('connection', 'close')
    reply.hijack()
    res.writeHead(statusCode, headers)
    if (request.method === 'HEAD' || statusCode === 204 || statusCode === 304) {
      this.bodiless = true
      res.end()
    } else if (!head.hasContentLength) {
      // Node.js holds a head until the first body byte; a stream may wait seconds for the GPU's first
      // token, and clients time the wait for headers: send it now, as nginx does.
      res.flushHeaders()
    }
    this.#resume = resume
    const callback = this.replyFrom
    this.replyFrom = null
    callback?.(null, { statusCode, headers: {}, body: NO_BODY })
    return true
  }

  onData (chunk: Buffer): boolean {
    if (this.#firstByte) this.#onFirstByte()
    if (this.bodiless) return true
    const res = this.reply.raw
    if (res.write(chunk)) return true
    res.once('drain', this.#resume as () => void)
    return false
  }

  onComplete (): void {
    if (this.#firstByte) this.#onFirstByte()
    this.state = DONE
    this.forwarder.settle(this)
    if (!this.bodiless) this.reply.raw.end()
  }

  onError (err: Error): void {
    clearTimeout(this.#interim)
    const wasStreaming = this.state === STREAMING
    this.state = DONE
    this.forwarder.settle(this)
    if (!wasStreaming) {
      const callback = this.replyFrom
      this.replyFrom = null
      // Through reply-from, to onError below: one way to answer a failure before the head.
      if (callback !== null && !this.forwarder.closed) callback(err)
      else if (this.forwarder.closed) this.reply.raw.destroy()
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

  #onInterim (): void {
    // undici restarts its headers timeout on every 1xx; an upstream that keeps sending them would hold
    // the request forever. The timeout runs from the request.
    if (this.#interim !== undefined) return
    const left = Math.max(0, this.forwarder.timeoutMs - (Date.now() - this.#dispatchedAt))
    this.#interim = setTimeout(() => this.#abort?.(new InterimTimeout()), left)
  }
}

const kExchange = Symbol('relay.exchange')
type WithExchange = FastifyRequest & { [kExchange]?: Exchange }

export class Forwarder {
  readonly timeoutMs: number
  readonly location: (value: string) => string
  /** What @fastify/http-proxy takes as its `undici` option: reply-from calls `request` */
  readonly dispatcher: { request(options: ReplyFromRequest, callback: ReplyFromCallback): void }
  readonly onFailure: ForwarderOptions['onFailure']
  readonly onFirstByte: ForwarderOptions['onFirstByte']
  readonly #pool: Pool
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
    this.#pool = new Pool(upstream.origin, {
      connections: options.connections,
      pipelining: 1,
      headersTimeout: timeoutMs,
      // Between two chunks of a streamed body, not for the whole body: a generation may run for minutes.
      bodyTimeout: timeoutMs,
      keepAliveTimeout: 4_000,
      keepAliveMaxTimeout: 60_000,
      connect: upstreamConnector({ connectTimeoutMs: Math.min(10_000, timeoutMs), onUnpatched: options.onWarning })
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
        exchange.dispatch(pool, opts)
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
    await this.#pool.destroy()
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
