// Everything that is not the relay's own route goes to the one configured upstream, streamed both
// ways. @fastify/http-proxy does the routing, @fastify/reply-from the request rewriting, and the
// forwarder (src/forward/) the rest: its own pooled, verified HTTP/1.1 connections, no retries,
// cancellation when the client leaves, the body limit on the stream, and answers that say what went
// wrong without naming the upstream. This plugin only wires them together.
import fp from 'fastify-plugin'
import { fastifyHttpProxy, type FastifyHttpProxyOptions } from '@fastify/http-proxy'
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify'
import { BodyTooLarge, withHeaders } from '../errors.js'
import { PROXIED_METHODS } from '../lib/request-rules.js'
import { Forwarder } from '../forward/forwarder.js'
import type { UpstreamFailure } from '../forward/upstream-errors.js'

type ReplyOptions = NonNullable<FastifyHttpProxyOptions['replyOptions']>

const proxyPlugin: FastifyPluginAsync = async (fastify) => {
  const { upstream, upstreamTimeoutMs, bodyLimitBytes, logLevel, limits } = fastify.config

  const forwarder = new Forwarder({
    upstream,
    timeoutMs: upstreamTimeoutMs,
    bodyLimitBytes,
    // The admission queue is the only queue: a request it lets through gets a connection at once,
    // never waits inside the pool. No cap, no bound (each stream holds one connection to the GPU).
    connections: limits.maxConcurrent > 0 ? limits.maxConcurrent : null,
    // Every upstream failure, before or after the headers: counted by reason and logged once.
    onFailure (reply: FastifyReply, failure: UpstreamFailure, cause: unknown, midBody: boolean) {
      fastify.relayMetrics.upstreamError(failure.reason)
      reply.log.error({ reason: failure.reason, code: failure.code, upstream: upstream.origin, err: rootCause(cause) },
        `${midBody ? 'upstream response failed mid-body' : 'upstream request failed'}: ${failure.reason}`)
    },
    onFirstByte (request, statusCode, elapsedMs) { fastify.relayMetrics.firstByte(request, statusCode, elapsedMs / 1000) }
  })
  // Runs after the server has closed, i.e. once in-flight requests are done.
  fastify.addHook('onClose', async () => { await forwarder.close() })
  // Whatever ended a request (the client left, the relay cut it), its upstream request ends with it.
  fastify.lifecycle.onEnd((ended) => { if (ended.request !== undefined) forwarder.release(ended.request) })

  const replyOptions: ReplyOptions = {
    // An LLM call is expensive and a busy GPU must not be hammered: never retry.
    retryDelay: () => null,
    rewriteRequestHeaders: (request, headers) => forwarder.requestHeaders(request as FastifyRequest, headers),
    // reply-from's types allow an HTTP/2 server; this relay's is HTTP/1.1.
    onError: ((reply: FastifyReply, { error }: { error: Error }) => forwarder.onError(reply, error)) as unknown as ReplyOptions['onError'],
    // The exchange has written the head and streams the body: nothing is left for reply-from to do.
    onResponse: () => {}
  }

  // Encapsulated: these hooks are the proxied routes' own, never /healthz's or /metrics'.
  fastify.addHook('onRequest', (request, reply, done) => {
    const declared = request.headers['content-length']
    if (declared !== undefined && Number(declared) > bodyLimitBytes) {
      // Nothing of the body is read: refuse it, and close the connection rather than drain it.
      done(withHeaders(new BodyTooLarge(bodyLimitBytes), { connection: 'close' }))
      return
    }
    forwarder.begin(request, reply)
    done()
  })
  // A declared length was checked above and Node's parser enforces it; a chunked body is counted.
  fastify.addHook('preParsing', (request, _reply, payload, done) => {
    done(null, request.headers['transfer-encoding'] === undefined ? payload : forwarder.limitBody(payload))
  })
  // Every body streams through, whatever its type: Fastify's own text/plain and JSON parsers would read
  // it into memory first (http-proxy's catch-all passthrough ranks below them).
  fastify.removeAllContentTypeParsers()
  await fastify.register(fastifyHttpProxy, {
    upstream: upstream.url,
    httpMethods: PROXIED_METHODS,
    // reply-from calls it as it would call an undici dispatcher; the forwarder's pool answers.
    undici: forwarder.dispatcher as never,
    disableRequestLogging: true,
    // reply-from logs each failure at warn before onError runs; the forwarder logs it once, with the reason.
    logLevel: logLevel === 'fatal' || logLevel === 'silent' ? logLevel : 'error',
    replyOptions
  })
}

function rootCause (err: unknown): unknown {
  let e = err
  for (let depth = 0; depth < 8 && (e as { cause?: unknown })?.cause !== undefined; depth++) e = (e as { cause: unknown }).cause
  return e
}

export default fp(proxyPlugin, {
  name: 'relay-proxy',
  fastify: '5.x',
  encapsulate: true,
  dependencies: ['relay-config', 'relay-lifecycle', 'relay-metrics', 'relay-admission']
})
