// The relay's own HTTP/1.1 client for its one upstream: a pool of keep-alive connections, one request
// at a time on each, read with the strict parser of src/lib/h1-response.ts. It exists so that a
// response body's bytes can be handed on as they arrive, with their chunked framing when the client
// gets a chunked response too, instead of being parsed into chunks and framed again for the client
// (bench/README.md has the measurements). Everything a misbehaving upstream can do is decided here:
// a reset is never an end, interim responses never restart the timeout, bytes that arrive outside a
// response drop the connection, and nothing is ever retried.
import { connect as netConnect, isIP, type Socket } from 'node:net'
import { connect as tlsConnect } from 'node:tls'
import type { Readable } from 'node:stream'
import { ChunkedReader, parseResponseHead, type ResponseHead } from '../lib/h1-response.js'
import { BODY_TIMEOUT, CONNECT_TIMEOUT, HEADERS_TIMEOUT, UPSTREAM_EOF } from './upstream-errors.js'

export interface UpstreamOptions {
  protocol: 'http:' | 'https:'
  hostname: string
  port: number
  /** Most connections at once; null: one per request under way */
  maxConnections: number | null
  connectTimeoutMs: number
  /** From the request being sent to the final response head (interim responses do not restart it) */
  headersTimeoutMs: number
  /** Longest silence between two pieces of a response body */
  bodyTimeoutMs: number
  /** How long an idle connection is kept (the upstream's own Keep-Alive hint shortens it) */
  keepAliveTimeoutMs: number
  maxHeadBytes: number
}

export interface UpstreamRequest {
  method: string
  /** Path and query, as sent */
  path: string
  headers: Record<string, string | string[] | number | undefined>
  body: Readable | string | Buffer | null | undefined
}

/** What an exchange is told, in order: interim heads, one head, body bytes, and one end or error. */
export interface ExchangeHandler {
  onInterim(): void
  /** Returns true to get a chunked body with its own framing (for a chunked response to the client). */
  onHead(head: ResponseHead): boolean
  /** Returns false to pause the upstream until resume() is called. */
  onBody(bytes: Buffer): boolean
  onEnd(): void
  onError(err: Error): void
}

export interface ExchangeControl {
  /** The client left, or the relay gave up: the connection is dropped, the handler hears nothing more. */
  cancel(): void
  resume(): void
}

class TimeoutError extends Error {
  readonly code: string
  constructor (code: string, message: string) {
    super(message)
    this.code = code
  }
}

const IDLE = 0
const CONNECTING = 1
const AWAITING_HEAD = 2
const READING_BODY = 3

/** The bytes after the request line: the framing headers the relay adds, and the blank line. */
const CRLF = '\r\n'

class Exchange implements ExchangeControl {
  readonly request: UpstreamRequest
  readonly handler: ExchangeHandler
  connection: Connection | undefined
  cancelled = false
  done = false

  constructor (request: UpstreamRequest, handler: ExchangeHandler) {
    this.request = request
    this.handler = handler
  }

  cancel (): void {
    if (this.done || this.cancelled) return
    this.cancelled = true
    this.connection?.destroy()
    this.connection = undefined
  }

  resume (): void {
    this.connection?.resumeReading()
  }

  /** The one place an exchange ends with an error: at most once, and never after a cancel. */
  fail (err: Error): void {
    if (this.done || this.cancelled) return
    this.done = true
    this.handler.onError(err)
  }
}

class Connection {
  readonly pool: UpstreamPool
  readonly socket: Socket
  state = CONNECTING
  exchange: Exchange | undefined
  /** When the current stage must end (connecting, waiting for the head) */
  deadline = 0
  /** Body bytes read so far in this exchange, and at the last sweep: silence is no progress */
  bodyBytes = 0
  bodyBytesAtSweep = -1
  bodySilentSince = 0
  idleSince = 0
  keepAliveMs: number
  #buffer: Buffer | undefined
  #head: ResponseHead | undefined
  #remaining = 0
  #chunked: ChunkedReader | undefined
  #requestSent = false
  #reusable = true
  #paused = false

  constructor (pool: UpstreamPool, socket: Socket) {
    this.pool = pool
    this.socket = socket
    this.keepAliveMs = pool.options.keepAliveTimeoutMs
    socket.setNoDelay(true)
    socket.on('data', (data: Buffer) => this.#onData(data))
    socket.on('end', () => this.#onEnd())
    socket.on('error', (err: Error) => this.#onClose(err))
    socket.on('close', () => this.#onClose(undefined))
  }

  destroy (): void {
    this.#reusable = false
    this.exchange = undefined
    this.socket.destroy()
    this.pool.forget(this)
  }

  resumeReading (): void {
    if (!this.#paused) return
    this.#paused = false
    this.socket.resume()
  }

  /** Sends an exchange's request on this connection. */
  start (exchange: Exchange): void {
    this.exchange = exchange
    exchange.connection = this
    this.state = AWAITING_HEAD
    this.deadline = Date.now() + this.pool.options.headersTimeoutMs
    this.#head = undefined
    this.#buffer = undefined
    this.#chunked = undefined
    this.#requestSent = false
    this.bodyBytes = 0
    this.bodyBytesAtSweep = -1
    try {
      this.#write(exchange.request)
    } catch (err) {
      this.destroy()
      exchange.fail(err as Error)
    }
  }

  #write ({ method, path, headers, body }: UpstreamRequest): void {
    let head = `${method} ${path} HTTP/1.1${CRLF}`
    for (const name in headers) {
      const value = headers[name]
      if (value === undefined) continue
      if (Array.isArray(value)) for (const item of value) head += `${name}: ${item}${CRLF}`
      else head += `${name}: ${value}${CRLF}`
    }
    if (body === null || body === undefined || typeof body === 'string' || Buffer.isBuffer(body)) {
      const bytes = body === null || body === undefined ? 0 : Buffer.byteLength(body)
      if (bytes > 0 && headers['content-length'] === undefined) head += `content-length: ${bytes}${CRLF}`
      this.socket.write(head + CRLF, 'latin1')
      if (bytes > 0) this.socket.write(body as string | Buffer)
      this.#requestSent = true
      return
    }
    // A stream: of a declared length, passed on as it is; else chunked, each piece framed.
    const chunked = headers['content-length'] === undefined
    if (chunked) head += `transfer-encoding: chunked${CRLF}`
    this.socket.write(head + CRLF, 'latin1')
    const socket = this.socket
    const onData = (chunk: Buffer): void => {
      if (chunk.length === 0) return
      const ok = chunked ? socket.write(`${chunk.length.toString(16)}${CRLF}`) && socket.write(chunk) && socket.write(CRLF) : socket.write(chunk)
      if (!ok) {
        body.pause()
        socket.once('drain', () => body.resume())
      }
    }
    // A response that arrives before the whole body went out ends the request: stop sending it.
    const stop = (): void => { body.off('data', onData) }
    body.on('data', onData)
    body.once('end', () => {
      socket.off('close', stop)
      if (chunked) socket.write(`0${CRLF}${CRLF}`)
      this.#requestSent = true
    })
    body.once('error', (err: Error) => {
      const exchange = this.exchange
      this.destroy()
      exchange?.fail(err)
    })
    socket.once('close', stop)
  }

  #onData (data: Buffer): void {
    const exchange = this.exchange
    if (exchange === undefined || this.state === IDLE) {
      // Bytes nobody asked for: on the next request they would pass for its answer.
      this.destroy()
      return
    }
    try {
      if (this.state === AWAITING_HEAD) this.#readHead(exchange, data)
      else this.#readBody(exchange, data)
    } catch (err) {
      this.destroy()
      exchange.fail(err as Error)
    }
  }

  #readHead (exchange: Exchange, data: Buffer): void {
    let buffer = this.#buffer === undefined ? data : Buffer.concat([this.#buffer, data])
    for (;;) {
      const parsed = parseResponseHead(buffer, exchange.request.method, this.pool.options.maxHeadBytes)
      if (parsed === undefined) {
        this.#buffer = buffer
        return
      }
      buffer = buffer.subarray(parsed.length)
      const { head } = parsed
      if (head.statusCode < 200) {
        // An interim response, asked for or not (RFC 9110 §15.2): the real answer follows. 101
        // would switch protocols, which the relay never asked for.
        if (head.statusCode === 101) throw Object.assign(new Error('the upstream switched protocols unasked'), { code: 'RELAY_INVALID_RESPONSE' })
        exchange.handler.onInterim()
        continue
      }
      this.#buffer = undefined
      this.#head = head
      this.state = READING_BODY
      this.bodySilentSince = Date.now()
      if (head.keepAliveTimeoutMs !== undefined) this.keepAliveMs = Math.min(this.pool.options.keepAliveTimeoutMs, Math.max(0, head.keepAliveTimeoutMs - 1000))
      if (!head.keepAlive) this.#reusable = false
      const passthrough = exchange.handler.onHead(head)
      if (exchange.cancelled || exchange.done) return
      if (head.framing === 'chunked') this.#chunked = new ChunkedReader(passthrough)
      else if (head.framing === 'length') this.#remaining = head.contentLength
      if (head.framing === 'none') {
        if (buffer.length > 0) this.#reusable = false
        this.#complete(exchange)
        return
      }
      if (buffer.length > 0) this.#readBody(exchange, buffer)
      return
    }
  }

  #readBody (exchange: Exchange, data: Buffer): void {
    this.bodyBytes += data.length
    const head = this.#head as ResponseHead
    if (head.framing === 'length') {
      const take = Math.min(this.#remaining, data.length)
      if (take < data.length) this.#reusable = false
      this.#remaining -= take
      const more = this.#deliver(exchange, take === data.length ? data : data.subarray(0, take))
      if (exchange.cancelled || exchange.done) return
      if (this.#remaining === 0) this.#complete(exchange)
      else if (!more) this.#pause()
      return
    }
    if (head.framing === 'chunked') {
      const reader = this.#chunked as ChunkedReader
      const { bytes, done, extra } = reader.read(data)
      let more = true
      for (const piece of bytes) more = this.#deliver(exchange, piece) && more
      if (exchange.cancelled || exchange.done) return
      if (done) {
        if (extra > 0) this.#reusable = false
        this.#complete(exchange)
      } else if (!more) {
        this.#pause()
      }
      return
    }
    // Until the connection closes.
    if (!this.#deliver(exchange, data) && !exchange.cancelled) this.#pause()
  }

  #deliver (exchange: Exchange, bytes: Buffer): boolean {
    if (bytes.length === 0) return true
    return exchange.handler.onBody(bytes)
  }

  #pause (): void {
    if (this.#paused || this.exchange === undefined) return
    this.#paused = true
    this.socket.pause()
  }

  #complete (exchange: Exchange): void {
    exchange.done = true
    exchange.connection = undefined
    this.exchange = undefined
    this.state = IDLE
    const reuse = this.#reusable && this.#requestSent && !this.socket.destroyed
    exchange.handler.onEnd()
    if (reuse) this.pool.release(this)
    else this.destroy()
  }

  #onEnd (): void {
    const exchange = this.exchange
    // A body that ends when the connection does ends here: with a FIN, cleanly.
    if (exchange !== undefined && this.state === READING_BODY && this.#head?.framing === 'close') {
      this.#reusable = false
      this.#complete(exchange)
      return
    }
    this.#onClose(undefined)
  }

  #onClose (err: Error | undefined): void {
    const exchange = this.exchange
    this.exchange = undefined
    this.#reusable = false
    this.pool.forget(this)
    if (!this.socket.destroyed) this.socket.destroy()
    if (exchange === undefined) return
    // A reset, an error, or a close before the response was whole is never an end.
    exchange.fail(err ?? new TimeoutError(UPSTREAM_EOF, 'the upstream closed the connection before the response was complete'))
  }

  /** Called by the pool's sweep: ends what has waited too long. */
  sweep (now: number): void {
    const exchange = this.exchange
    if (this.state === IDLE) {
      if (now - this.idleSince >= this.keepAliveMs) this.destroy()
      return
    }
    if (exchange === undefined) return
    if (this.state === CONNECTING && now >= this.deadline) {
      this.destroy()
      exchange.fail(new TimeoutError(CONNECT_TIMEOUT, 'the upstream did not accept the connection in time'))
    } else if (this.state === AWAITING_HEAD && now >= this.deadline) {
      this.destroy()
      exchange.fail(new TimeoutError(HEADERS_TIMEOUT, 'the upstream did not send a response head in time'))
    } else if (this.state === READING_BODY && !this.#paused) {
      // A body held back for a slow client is not the upstream's silence.
      if (this.bodyBytes !== this.bodyBytesAtSweep) {
        this.bodyBytesAtSweep = this.bodyBytes
        this.bodySilentSince = now
      } else if (now - this.bodySilentSince >= this.pool.options.bodyTimeoutMs) {
        this.destroy()
        exchange.fail(new TimeoutError(BODY_TIMEOUT, 'the upstream sent nothing more in time'))
      }
    } else if (this.#paused) {
      this.bodySilentSince = now
    }
  }
}

export class UpstreamPool {
  readonly options: UpstreamOptions
  readonly #connections = new Set<Connection>()
  readonly #idle: Connection[] = []
  readonly #waiting: Exchange[] = []
  #sweeper: NodeJS.Timeout | undefined
  #closed = false

  constructor (options: UpstreamOptions) {
    this.options = options
  }

  get connections (): number { return this.#connections.size }

  /** Sends a request on an idle connection, a new one, or (at the limit) the next one to free up. */
  request (request: UpstreamRequest, handler: ExchangeHandler): ExchangeControl {
    const exchange = new Exchange(request, handler)
    if (this.#closed) {
      queueMicrotask(() => exchange.fail(Object.assign(new Error('the relay is shutting down'), { code: 'UND_ERR_DESTROYED' })))
      return exchange
    }
    const idle = this.#idle.pop()
    if (idle !== undefined) idle.start(exchange)
    else if (this.options.maxConnections === null || this.#connections.size < this.options.maxConnections) this.#connect(exchange)
    else this.#waiting.push(exchange)
    return exchange
  }

  /** A connection whose response is complete and which may carry another request. */
  release (connection: Connection): void {
    for (let next = this.#waiting.shift(); next !== undefined; next = this.#waiting.shift()) {
      if (next.cancelled) continue
      connection.start(next)
      return
    }
    connection.idleSince = Date.now()
    this.#idle.push(connection)
  }

  forget (connection: Connection): void {
    if (!this.#connections.delete(connection)) return
    const index = this.#idle.indexOf(connection)
    if (index !== -1) this.#idle.splice(index, 1)
    // A freed place: a waiting request may connect now.
    const next = this.#waiting.shift()
    if (next !== undefined && !next.cancelled) this.#connect(next)
    if (this.#connections.size === 0) this.#stopSweeping()
  }

  async close (): Promise<void> {
    this.#closed = true
    for (const exchange of this.#waiting.splice(0)) exchange.cancel()
    for (const connection of [...this.#connections]) connection.destroy()
  }

  #connect (exchange: Exchange): void {
    const { protocol, hostname, port } = this.options
    const socket = protocol === 'https:'
      ? tlsConnect({ host: hostname, port, servername: isIP(hostname) === 0 ? hostname : undefined, rejectUnauthorized: true, ALPNProtocols: ['http/1.1'] })
      : netConnect({ host: hostname, port })
    const connection = new Connection(this, socket)
    connection.exchange = exchange
    exchange.connection = connection
    connection.deadline = Date.now() + this.options.connectTimeoutMs
    this.#connections.add(connection)
    this.#startSweeping()
    socket.once(protocol === 'https:' ? 'secureConnect' : 'connect', () => {
      if (exchange.cancelled || connection.exchange !== exchange) {
        // Cancelled while connecting: the connection may still serve someone else.
        connection.exchange = undefined
        connection.state = IDLE
        this.release(connection)
        return
      }
      connection.start(exchange)
    })
  }

  #startSweeping (): void {
    if (this.#sweeper !== undefined) return
    const { headersTimeoutMs, bodyTimeoutMs, connectTimeoutMs, keepAliveTimeoutMs } = this.options
    const interval = Math.max(25, Math.min(250, Math.floor(Math.min(headersTimeoutMs, bodyTimeoutMs, connectTimeoutMs, keepAliveTimeoutMs) / 4)))
    this.#sweeper = setInterval(() => {
      const now = Date.now()
      for (const connection of this.#connections) connection.sweep(now)
    }, interval)
    this.#sweeper.unref()
  }

  #stopSweeping (): void {
    clearInterval(this.#sweeper)
    this.#sweeper = undefined
  }
}
