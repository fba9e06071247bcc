// Builds the relay from a configuration object. Never listens: server.ts does, and so do the tests,
// which build the app exactly the way production does.
import { STATUS_CODES } from 'node:http'
import Fastify, { LogController, type FastifyBaseLogger, type FastifyError, type FastifyInstance } from 'fastify'
import type { DestinationStream } from 'pino'
import type { RelayConfig } from './config.js'
import { createLogger } from './logger.js'
import { normaliseRequestTarget } from './lib/request-target.js'
import { requestIdFrom } from './lib/request-id.js'
import { CLIENT_CLOSED_REQUEST, closedStatus } from './lib/http-status.js'
import configPlugin from './plugins/config.js'
import healthPlugin from './plugins/health.js'
import metricsPlugin from './plugins/metrics.js'
import proxyPlugin, { PROXIED_METHODS } from './plugins/proxy.js'

export interface BuildAppOptions {
  /** Where log lines go (stdout by default); tests pass a stream to read them. */
  logDestination?: DestinationStream
  /** Set in cluster workers: /metrics then shows the sum over all workers. */
  collectClusterMetrics?: () => Promise<string>
}

const ALLOW = PROXIED_METHODS.join(', ')

export async function buildApp (config: RelayConfig, options: BuildAppOptions = {}): Promise<FastifyInstance> {
  const app = Fastify({
    loggerInstance: createLogger(config.logLevel, options.logDestination) as FastifyBaseLogger,
    // One line per request, written below when the response ends, instead of Fastify's two.
    logController: new LogController({ disableRequestLogging: true }),
    requestIdHeader: false,
    genReqId: (req) => requestIdFrom(req.headers['x-request-id']),
    trustProxy: config.trustProxy === undefined ? false : config.trustProxy.join(','),
    rewriteUrl: (req) => normaliseRequestTarget(req.url ?? '/'),
    bodyLimit: config.bodyLimitBytes,
    // Slow clients (slowloris, trickled bodies) are cut after these; Node checks them every
    // connectionsCheckingInterval, so keep that short enough for the timeouts to mean something.
    http: {
      headersTimeout: config.headersTimeoutMs,
      requestTimeout: config.requestTimeoutMs,
      connectionsCheckingInterval: Math.min(1000, Math.max(100, Math.floor(config.headersTimeoutMs / 4)))
    },
    requestTimeout: config.requestTimeoutMs,
    // Longer than the proxy in front keeps idle connections (Traefik: 90 s), so that it, not the
    // relay, closes them: otherwise it may send a request on a connection the relay is closing.
    keepAliveTimeout: config.keepAliveTimeoutMs,
    // During the drain, requests already on an open connection are served, not refused; when the
    // listener closes, connections between two requests are closed, busy ones finish.
    return503OnClosing: false,
    forceCloseConnections: 'idle'
  })

  app.setErrorHandler((error: FastifyError, request, reply) => {
    const statusCode = error.statusCode !== undefined && error.statusCode >= 400 && error.statusCode < 600 ? error.statusCode : 500
    if (statusCode >= 500) reply.log.error({ err: error }, 'request failed')
    // A 5xx message could carry internals (addresses, stack frames): clients get the status text.
    const message = statusCode >= 500 ? (STATUS_CODES[statusCode] ?? 'Error') : error.message
    return reply.code(statusCode).send({ statusCode, error: STATUS_CODES[statusCode] ?? 'Error', message })
  })

  app.setNotFoundHandler((request, reply) => {
    // Every path is proxied, so a miss here is a method the relay does not forward.
    return reply.code(405).header('allow', ALLOW)
      .send({ statusCode: 405, error: 'Method Not Allowed', message: `${request.method} is not supported` })
  })

  const debugEnabled = config.logLevel === 'debug' || config.logLevel === 'trace'
  // Hooks on the hot path are callback-style: an async hook costs a promise and a microtask each.
  app.addHook('onRequest', (request, reply, done) => {
    reply.header('x-request-id', request.id)
    const res = reply.raw
    res.once('close', () => {
      const probe = request.routeOptions.config.probe === true
      if (probe && !debugEnabled) return
      // Flat fields, not `req`/`res`: Fastify's serializers for those would log the query string.
      const line = {
        reqId: request.id,
        method: request.method,
        path: pathOf(request.url),
        statusCode: closedStatus(res),
        remoteAddress: request.ip,
        responseTime: Math.round(reply.elapsedTime * 100) / 100
      }
      const message = res.writableFinished
        ? 'request completed'
        : line.statusCode === CLIENT_CLOSED_REQUEST ? 'request aborted by the client' : 'response cut: the upstream failed'
      if (probe) app.log.debug(line, message)
      else app.log.info(line, message)
    })
    done()
  })

  await app.register(configPlugin, { config })
  await app.register(healthPlugin)
  await app.register(metricsPlugin, { collectClusterMetrics: options.collectClusterMetrics })

  // Added after the metrics hook, so these requests are counted too.
  app.addHook('onRequest', (request, reply, done) => {
    // rewriteUrl turned origin- and absolute-form targets into a path; what is left (`*`, junk)
    // means nothing here and must not reach the proxy's wildcard route.
    if (request.url.charCodeAt(0) !== 47 /* / */) {
      reply.code(400).header('connection', 'close')
        .send({ statusCode: 400, error: 'Bad Request', message: 'Unsupported request target' })
      return
    }
    // Node keeps the first of several Host headers; RFC 9112 says to refuse the ambiguity instead.
    if (hostHeaderCount(request.raw.rawHeaders) > 1) {
      reply.code(400).header('connection', 'close')
        .send({ statusCode: 400, error: 'Bad Request', message: 'More than one Host header' })
      return
    }
    done()
  })

  await app.register(proxyPlugin)
  return app
}

function hostHeaderCount (rawHeaders: string[]): number {
  let count = 0
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const name = rawHeaders[i] as string
    if (name.length === 4 && name.toLowerCase() === 'host') count++
  }
  return count
}

function pathOf (url: string): string {
  const queryStart = url.indexOf('?')
  return queryStart === -1 ? url : url.slice(0, queryStart)
}
