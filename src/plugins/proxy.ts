// Everything that is not the relay's own route goes to the one configured upstream, streamed both
// ways. @fastify/http-proxy does the routing and @fastify/reply-from the forwarding; this plugin adds
// what a public relay in front of an expensive GPU needs on top: a pooled, verified connection,
// no retries, cancellation when the client leaves, a body limit on the stream, and error answers
// that say what went wrong without naming the upstream.
import { Transform, type Readable, type TransformCallback } from 'node:stream'
import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http'
import { fastifyHttpProxy, type FastifyHttpProxyOptions } from '@fastify/http-proxy'
import { Pool, type Dispatcher } from 'undici'
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify'
import { toClientResponseHeaders, toUpstreamRequestHeaders } from '../lib/headers.js'
import { classifyUpstreamError, isAbort } from '../lib/upstream-errors.js'

declare module 'fastify' {
  interface FastifyRequest {
    /** Aborts the upstream request when the client goes away before its response is complete */
    upstreamAbort: AbortController | null
    /** The reply the upstream's response is streamed into (reply-from's hooks only get the request) */
    proxyReply: FastifyReply | null
  }
}

/** The methods the relay forwards. CONNECT and TRACE are not among them (answered 405). */
export const PROXIED_METHODS = ['DELETE', 'GET', 'HEAD', 'OPTIONS', 'PATCH', 'POST', 'PUT']

const BODY_TOO_LARGE = 'RELAY_BODY_TOO_LARGE'
const kReply = Symbol('relay.reply')

type ReplyOptions = NonNullable<FastifyHttpProxyOptions['replyOptions']>
type UpstreamHeaders = Record<string, string | string[] | number | undefined> & { [kReply]?: FastifyReply }
type ReplyFromCallback = (err: Error | null, res?: { statusCode: number, headers: IncomingHttpHeaders, body: { destroy(): void } }) => void

/** What reply-from hands onResponse when the relay streams the body itself: nothing to read. */
const NO_BODY = { destroy () {} }

class BodyTooLargeError extends Error {
  readonly code = BODY_TOO_LARGE
  constructor (limit: number) {
    super(`request body larger than ${limit} bytes`)
  }
}

/** Passes a chunked body through, failing the stream the moment it crosses the limit. */
function limitBody (payload: Readable, limit: number): Transform {
  let received = 0
  const limiter = new Transform({
    transform (chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback) {
      received += chunk.length
      if (received > limit) callback(new BodyTooLargeError(limit))
      else callback(null, chunk)
    }
  })
  payload.on('error', (err) => limiter.destroy(err))
  return payload.pipe(limiter)
}

function errorBody (statusCode: number, error: string, message: string): { statusCode: number, error: string, message: string } {
  return { statusCode, error, message }
}

const proxyPlugin: FastifyPluginAsync = async (fastify) => {
  const { upstream, upstreamTimeoutMs, bodyLimitBytes, logLevel } = fastify.config
  const tooLarge = errorBody(413, 'Payload Too Large', `The request body exceeds the limit of ${bodyLimitBytes} bytes`)

  const pool = new Pool(upstream.origin, {
    connections: 256,
    pipelining: 1,
    headersTimeout: upstreamTimeoutMs,
    // Between two chunks of a streamed body, not for the whole body: a generation may run for minutes.
    bodyTimeout: upstreamTimeoutMs,
    connectTimeout: Math.min(10_000, upstreamTimeoutMs),
    keepAliveTimeout: 4_000,
    keepAliveMaxTimeout: 60_000,
    // An https upstream's certificate is verified against Node's CAs plus NODE_EXTRA_CA_CERTS.
    connect: { rejectUnauthorized: true }
  })
  // Runs after the server has closed, i.e. once in-flight requests are done.
  fastify.addHook('onClose', async () => { await pool.destroy() })

  // reply-from calls `request(options, callback)` with the options it built, and expects a response
  // whose body it can pipe. The relay uses undici's stream() instead: when the upstream's headers
  // arrive, reply-from copies them onto the reply (onResponse then writes them out), and the body is
  // written straight into the client's response, with backpressure, without an intermediate Readable
  // and Fastify's stream plumbing: the largest single saving on the hot path. The reply rides on the
  // headers object reply-from copies from rewriteRequestHeaders (symbol keys survive Object.assign
  // and never reach the wire).
  const dispatcher = {
    request (options: Dispatcher.RequestOptions & { headers: UpstreamHeaders }, callback: ReplyFromCallback) {
      const reply = options.headers[kReply] as FastifyReply
      delete options.headers[kReply]
      options.signal = reply.request.upstreamAbort?.signal
      let headersReceived = false
      pool.stream(options, ({ statusCode, headers }) => {
        headersReceived = true
        callback(null, { statusCode, headers, body: NO_BODY })
        return reply.raw
      }, (err) => {
        if (err === null) return
        if (!headersReceived) return callback(err)
        // Past the headers, undici destroys the client's response with the upstream's error (the
        // callback only sees a premature close); a client that went away leaves it without one.
        const upstreamError = (reply.raw as { errored?: Error | null }).errored
        if (upstreamError != null) onUpstreamBodyError(reply, upstreamError)
      })
    }
  }

  // reply-from logs every failure at warn before onError runs; onError logs it once, with the reason.
  const replyFromLog = fastify.log.child({ component: 'reply-from' }, {
    level: logLevel === 'trace' || logLevel === 'debug' ? logLevel : logLevel === 'fatal' || logLevel === 'silent' ? logLevel : 'error'
  })

  fastify.decorateRequest('upstreamAbort', null)
  fastify.decorateRequest('proxyReply', null)

  fastify.addHook('onRequest', (request, reply, done) => {
    const declared = request.headers['content-length']
    if (declared !== undefined && Number(declared) > bodyLimitBytes) {
      // Nothing of the body is read: close the connection rather than drain it.
      reply.code(413).header('connection', 'close').send(tooLarge)
      return
    }
    const abort = new AbortController()
    request.upstreamAbort = abort
    request.proxyReply = reply
    const res = reply.raw
    res.once('close', () => { if (!res.writableFinished) abort.abort() })
    request.log = replyFromLog
    done()
  })

  fastify.addHook('preParsing', (request, _reply, payload, done) => {
    // A declared length was checked in onRequest and Node's parser enforces it; a chunked body is counted.
    done(null, request.headers['transfer-encoding'] === undefined ? payload : limitBody(payload, bodyLimitBytes))
  })

  function onUpstreamError (reply: FastifyReply, { error }: { error: Error }): void {
    const request = reply.request
    if (isAbort(error) && request.upstreamAbort?.signal.aborted === true) {
      return // the client left: nobody to answer, and not the upstream's fault
    }
    if (!request.raw.complete) reply.header('connection', 'close')
    if (causedBy(error, BODY_TOO_LARGE)) {
      reply.code(413).send(tooLarge)
      return
    }
    const failure = countAndLog(reply, error, 'upstream request failed')
    reply.code(failure.statusCode).send(errorBody(failure.statusCode, failure.statusCode === 504 ? 'Gateway Timeout' : 'Bad Gateway', failure.message))
  }

  // reply-from has put the upstream's status and (rewritten) headers on the reply: write them out;
  // undici's stream() writes the body (see the dispatcher above).
  function onUpstreamResponse (_request: FastifyRequest, reply: FastifyReply): void {
    reply.hijack()
    reply.raw.writeHead(reply.statusCode, reply.getHeaders() as OutgoingHttpHeaders)
    // Node.js holds a head until the first body byte. A response of declared length usually has its
    // body in the same packet (one write for both); a stream (SSE, chunked) may wait seconds for the
    // GPU's first token, and clients time the wait for headers: send its head now, as nginx does.
    if (reply.getHeader('content-length') === undefined) reply.raw.flushHeaders()
  }

  // Once headers are out, a failure can only cut the stream (undici destroys the client's response);
  // count and log it here, once.
  function onUpstreamBodyError (reply: FastifyReply, err: Error): void {
    if (!isAbort(err)) countAndLog(reply, err, 'upstream response failed mid-body')
  }

  // Every upstream failure, before or after the headers: counted by reason and logged once.
  function countAndLog (reply: FastifyReply, err: Error, what: string): ReturnType<typeof classifyUpstreamError> {
    const failure = classifyUpstreamError(err)
    fastify.relayMetrics.upstreamError(failure.reason)
    reply.log.error({ reason: failure.reason, code: failure.code, upstream: upstream.origin, err: rootCause(err) },
      `${what}: ${failure.reason}`)
    return failure
  }

  const replyOptions: ReplyOptions = {
    // An LLM call is expensive and a busy GPU must not be hammered: never retry.
    retryDelay: () => null,
    rewriteRequestHeaders (request, headers) {
      const upstreamHeaders = toUpstreamRequestHeaders(headers as IncomingHttpHeaders, {
        ip: request.ip,
        protocol: request.protocol,
        host: request.host,
        requestId: request.id,
        hasBody: request.body !== undefined && request.body !== null
      }) as UpstreamHeaders
      upstreamHeaders[kReply] = request.proxyReply as FastifyReply
      return upstreamHeaders as IncomingHttpHeaders
    },
    rewriteHeaders (headers, request) {
      return toClientResponseHeaders(headers as IncomingHttpHeaders, (request as FastifyRequest).id) as IncomingHttpHeaders
    },
    // reply-from's types allow an HTTP/2 server; this relay's is HTTP/1.1.
    onError: onUpstreamError as ReplyOptions['onError'],
    // reply-from's types say a raw response; it passes { statusCode, headers, stream }.
    onResponse: onUpstreamResponse as unknown as ReplyOptions['onResponse']
  }

  await fastify.register(fastifyHttpProxy, {
    upstream: upstream.url,
    httpMethods: PROXIED_METHODS,
    undici: dispatcher as unknown as { request: Dispatcher['request'] },
    disableRequestLogging: true,
    replyOptions
  })
}

function rootCause (err: unknown): unknown {
  let e = err
  for (let depth = 0; depth < 8 && (e as { cause?: unknown })?.cause !== undefined; depth++) e = (e as { cause: unknown }).cause
  return e
}

function causedBy (err: unknown, code: string): boolean {
  for (let e = err, depth = 0; e !== null && typeof e === 'object' && depth < 8; depth++) {
    if ((e as { code?: unknown }).code === code) return true
    e = (e as { cause?: unknown }).cause
  }
  return false
}

export default proxyPlugin
