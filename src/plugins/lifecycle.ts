// The one place that sees a request end. Each request gets a single `close` listener on its
// response; when it fires, the final status is worked out once and handed to every subscriber (the
// access log, the metrics, the proxy's cancellation, the overload protection's slot) in the order
// they subscribed. What a subscriber needs of the client (address, protocol, host) was read when the
// request arrived: by the time a response closes, its socket may be gone.
//
// Answers Node.js makes itself, before Fastify sees a request (a parser error, a header or request
// timeout), come through here too (`socketError`), so every answer is logged once and counted.
import { STATUS_CODES, type ServerResponse } from 'node:http'
import type { Socket } from 'node:net'
import fp from 'fastify-plugin'
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify'
import { BadRequest, HeadersTooLarge, RequestTimeout, ShuttingDown, errorBody, withHeaders } from '../errors.js'
import { requestIdFrom } from '../lib/request-id.js'
import { CLIENT_CLOSED_REQUEST } from '../lib/http-status.js'

/** What the relay knows of the client, read once when the request arrived. */
export interface Arrival {
  /** The client address (a trusted proxy's X-Forwarded-For when RELAY_TRUST_PROXY allows it) */
  readonly ip: string
  /** `http` or `https`, as the client saw it */
  readonly protocol: string
  /** The Host the client asked for ('' when it sent none) */
  readonly host: string
}

/**
 * - `completed`: the response was sent in full;
 * - `aborted`: the client went away first (status 499);
 * - `cut`: the relay ended the response before its end, for `cause`.
 */
export type Outcome = 'completed' | 'aborted' | 'cut'
export type CutCause = 'upstream' | 'shutdown' | 'send_timeout' | 'request_timeout'

export interface EndedRequest {
  readonly id: string
  readonly method: string
  /** Path and query, as routed */
  readonly url: string
  readonly arrival: Arrival
  readonly statusCode: number
  readonly outcome: Outcome
  readonly cause: CutCause | undefined
  /** The code of the relay error the request was answered with, if any (RELAY_QUEUE_FULL, …) */
  readonly code: string | undefined
  readonly durationMs: number
  /** The request as Fastify saw it; undefined for an answer Node.js made before Fastify saw one */
  readonly request: FastifyRequest | undefined
}

export type EndListener = (ended: EndedRequest) => void

export interface Lifecycle {
  /** Calls `listener` once per request, when its response has ended, whatever ended it. */
  onEnd(listener: EndListener): void
  /** Requests whose response has not ended yet */
  readonly inFlight: number
  /** Starts a request's lifecycle; the first onRequest hook does it, frameworkErrors too. */
  begin(request: FastifyRequest, reply: FastifyReply): void
  /** Records why the relay is about to cut a response, before it cuts it. */
  cutting(res: ServerResponse, cause: CutCause): void
  /** Records the code of the relay error a request is answered with (for the log line). */
  answeredWith(request: FastifyRequest, code: string): void
  /** Node.js' clientError: answers a request Fastify never saw, or one whose body timed out. */
  socketError(err: NodeJS.ErrnoException, socket: Socket): void
  /**
   * The shutdown timeout: requests with no response yet get 503, responses under way are cut.
   * Resolves once every one of them has ended, or after `waitMs`.
   */
  endAll(waitMs: number): Promise<void>
}

declare module 'fastify' {
  interface FastifyRequest {
    arrival: Arrival
  }
  interface FastifyInstance {
    lifecycle: Lifecycle
  }
}

const kReply = Symbol('relay.reply')
const kCause = Symbol('relay.cut-cause')
const kStatus = Symbol('relay.status-override')
const kCode = Symbol('relay.error-code')
const kAnswered = Symbol('relay.socket-answered')

type TrackedResponse = ServerResponse & { [kReply]?: FastifyReply, [kCause]?: CutCause, [kStatus]?: number }
type TrackedRequest = FastifyRequest & { [kCode]?: string }
type AnsweredSocket = Socket & { [kAnswered]?: true, _httpMessage?: TrackedResponse | null }

const NO_ARRIVAL: Arrival = Object.freeze({ ip: '', protocol: 'http', host: '' })

/** How long a socket that got a bare answer may keep sending before it is closed. */
const SOCKET_ANSWER_LINGER_MS = 2000

const lifecyclePlugin: FastifyPluginAsync = async (fastify) => {
  const listeners: EndListener[] = []
  const inFlight = new Set<TrackedResponse>()
  let settle: (() => void) | undefined

  function emit (ended: EndedRequest): void {
    for (const listener of listeners) {
      // One request's bookkeeping must never take the process down.
      try {
        listener(ended)
      } catch (err) {
        fastify.log.error({ reqId: ended.id, err }, 'request end listener failed')
      }
    }
  }

  function end (request: FastifyRequest, reply: FastifyReply): void {
    const res = reply.raw as TrackedResponse
    inFlight.delete(res)
    const { statusCode, outcome, cause } = finalStatus(res)
    emit({
      id: request.id,
      method: request.method,
      url: request.url,
      arrival: request.arrival,
      statusCode,
      outcome,
      cause,
      code: (request as TrackedRequest)[kCode],
      durationMs: reply.elapsedTime,
      request
    })
    if (inFlight.size === 0) settle?.()
  }

  function begin (request: FastifyRequest, reply: FastifyReply): void {
    try {
      request.arrival = { ip: request.ip ?? '', protocol: request.protocol ?? 'http', host: request.host ?? '' }
    } catch {
      // The client left while the request was routed: there is nobody to describe.
      request.arrival = NO_ARRIVAL
    }
    reply.header('x-request-id', request.id)
    const res = reply.raw as TrackedResponse
    res[kReply] = reply
    inFlight.add(res)
    res.once('close', () => end(request, reply))
  }

  // Set by begin() before any hook or handler reads it.
  fastify.decorateRequest('arrival', null as unknown as Arrival)

  // The first of all hooks (this plugin is registered first): nothing before it reads the socket.
  fastify.addHook('onRequest', (request, reply, done) => {
    begin(request, reply)
    done()
  })

  fastify.decorate('lifecycle', {
    onEnd (listener) { listeners.push(listener) },
    get inFlight () { return inFlight.size },
    begin,
    cutting (res, cause) {
      (res as TrackedResponse)[kCause] ??= cause
    },
    answeredWith (request, code) {
      (request as TrackedRequest)[kCode] = code
    },
    socketError (err, socket) {
      const reqId = answerSocketError(err, socket as AnsweredSocket, emit)
      if (reqId !== undefined) fastify.log.debug({ reqId, err }, 'client error')
    },
    async endAll (waitMs) {
      if (inFlight.size === 0) return
      const settled = new Promise<void>((resolve) => { settle = resolve })
      for (const res of [...inFlight]) {
        const reply = res[kReply]
        if (!res.headersSent && reply !== undefined && !reply.sent) {
          // Nothing was sent yet (waiting for the upstream's headers, or for a GPU slot): say so.
          reply.send(withHeaders(new ShuttingDown(), { 'retry-after': 1, connection: 'close' }))
        } else {
          res[kCause] ??= 'shutdown'
          res.destroy()
        }
      }
      await Promise.race([settled, new Promise((resolve) => setTimeout(resolve, waitMs).unref())])
    }
  } satisfies Lifecycle)
}

/** The status, outcome and cause a closed response is logged and counted with. */
function finalStatus (res: TrackedResponse): { statusCode: number, outcome: Outcome, cause: CutCause | undefined } {
  const override = res[kStatus]
  if (override !== undefined) return { statusCode: override, outcome: 'cut', cause: res[kCause] }
  if (res.writableFinished) return { statusCode: res.statusCode, outcome: 'completed', cause: undefined }
  const cause = res[kCause] ?? ((res as { errored?: Error | null }).errored != null ? 'upstream' : undefined)
  if (cause !== undefined) return { statusCode: res.statusCode, outcome: 'cut', cause }
  return { statusCode: CLIENT_CLOSED_REQUEST, outcome: 'aborted', cause: undefined }
}

/** Which status Node.js' client errors deserve. */
function statusOfClientError (code: string | undefined): number {
  if (code === 'ERR_HTTP_REQUEST_TIMEOUT') return 408
  if (code === 'HPE_HEADER_OVERFLOW') return 431
  return 400
}

/** Returns the id of the request the error was answered for, or undefined when there was nothing to answer. */
function answerSocketError (err: NodeJS.ErrnoException, socket: AnsweredSocket, emit: (ended: EndedRequest) => void): string | undefined {
  // Nothing to answer: the client reset the connection (a request under way ends as aborted by
  // itself), the relay destroyed it (cutting a response, with that error), it is closing after an
  // answer already sent, or it was answered before (a socket in error keeps failing to parse).
  if (err.code === 'ECONNRESET' || socket.destroyed || socket.writableEnded || socket[kAnswered] === true) return undefined
  socket[kAnswered] = true
  const active = socket._httpMessage ?? undefined
  const reply = active?.[kReply]
  const statusCode = statusOfClientError(err.code)
  if (active !== undefined && reply !== undefined) {
    // A request under way whose body did not arrive in time is the one that timed out. Any other
    // error is about bytes after it: the connection is unusable, the request under way ends with it.
    if (statusCode === 408 && !reply.request.raw.complete) {
      if (!active.headersSent && !reply.sent) {
        reply.send(withHeaders(new RequestTimeout(), { connection: 'close' }))
        return reply.request.id
      }
      active[kStatus] = 408
      active[kCause] = 'request_timeout'
    }
    socket.destroy()
    return reply.request.id
  }
  // No request was handed to Fastify: the header block timed out or could not be parsed.
  const id = requestIdFrom(undefined)
  const message = statusCode === 408 ? new RequestTimeout().message : statusCode === 431 ? new HeadersTooLarge().message : new BadRequest().message
  answerRaw(socket, statusCode, message, id)
  emit({
    id,
    method: 'UNKNOWN',
    url: '',
    arrival: { ip: socket.remoteAddress ?? '', protocol: 'encrypted' in socket ? 'https' : 'http', host: '' },
    statusCode,
    outcome: 'completed',
    cause: undefined,
    code: err.code,
    durationMs: 0,
    request: undefined
  })
  return id
}

/**
 * Writes a whole answer on a bare socket and closes it once the client stops sending (or after a
 * moment): closing with unread data would reset the connection under the answer.
 */
function answerRaw (socket: Socket, statusCode: number, message: string, requestId: string): void {
  if (!socket.writable) {
    socket.destroy()
    return
  }
  const body = JSON.stringify(errorBody(statusCode, message))
  socket.end(`HTTP/1.1 ${statusCode} ${STATUS_CODES[statusCode] ?? 'Error'}\r\ncontent-type: application/json; charset=utf-8\r\n` +
    `content-length: ${Buffer.byteLength(body)}\r\nx-request-id: ${requestId}\r\nconnection: close\r\n\r\n${body}`)
  const timer = setTimeout(() => socket.destroy(), SOCKET_ANSWER_LINGER_MS).unref()
  socket.once('close', () => clearTimeout(timer))
  socket.once('end', () => socket.destroy())
}

export default fp(lifecyclePlugin, { name: 'relay-lifecycle', fastify: '5.x' })
