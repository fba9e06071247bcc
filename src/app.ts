// Builds the relay from a configuration object. Never listens: server.ts does, and so do the tests,
// which build the app exactly the way production does. Read top to bottom, this is the map of the
// service: the connections (http-server.ts), the request lifecycle every other part hooks into, the
// one error path, the refusals, health and metrics, and the proxy behind the overload protection.
import { STATUS_CODES } from 'node:http'
import Fastify, { LogController, type FastifyBaseLogger, type FastifyError, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify'
import type { DestinationStream } from 'pino'
import type { RelayConfig } from './config.js'
import { createLogger } from './logger.js'
import { createHttpServer } from './http-server.js'
import { normaliseRequestTarget } from './lib/request-target.js'
import { requestIdFrom } from './lib/request-id.js'
import { PROXIED_METHODS } from './lib/request-rules.js'
import { MethodNotAllowed, errorBody, isRelayError, withHeaders, type RelayError } from './errors.js'
import configPlugin from './plugins/config.js'
import lifecyclePlugin from './plugins/lifecycle.js'
import accessLogPlugin from './plugins/access-log.js'
import requestRulesPlugin from './plugins/request-rules.js'
import healthPlugin from './plugins/health.js'
import metricsPlugin from './plugins/metrics.js'
import loadSheddingPlugin from './plugins/load-shedding.js'
import rateLimitPlugin from './plugins/rate-limit.js'
import admissionPlugin from './plugins/admission.js'
import proxyPlugin from './plugins/proxy.js'
import type { Gate } from './admission-gate.js'
import type { RateLimitStore } from './rate-limit-stores.js'

export interface BuildAppOptions {
  /** Where log lines go (stdout by default); tests pass a stream to read them. */
  logDestination?: DestinationStream
  /** Set in cluster workers: /metrics then shows the sum over all workers. */
  collectClusterMetrics?: () => Promise<string>
  /** Set in cluster workers: the pod-wide limits are kept by the primary. */
  cluster?: { gate?: Gate, rateLimitStore?: RateLimitStore }
}

const ALLOW = PROXIED_METHODS.join(', ')

export async function buildApp (config: RelayConfig, options: BuildAppOptions = {}): Promise<FastifyInstance> {
  // The Node.js server is made while the app is; its hooks only run once both exist.
  const app: FastifyInstance = Fastify({
    loggerInstance: createLogger(config.logLevel, options.logDestination) as FastifyBaseLogger,
    // One line per request, written by the access log when the response ends, instead of Fastify's two.
    logController: new LogController({ disableRequestLogging: true }),
    requestIdHeader: false,
    genReqId: (req) => requestIdFrom(req.headers['x-request-id']),
    trustProxy: config.trustProxy === undefined ? false : config.trustProxy.join(','),
    rewriteUrl: (req) => normaliseRequestTarget(req.url ?? '/'),
    bodyLimit: config.bodyLimitBytes,
    // Slow clients (slowloris, trickled bodies, responses left unread) are cut by the server.
    serverFactory: (handler) => createHttpServer(handler, {
      headersTimeoutMs: config.headersTimeoutMs,
      requestTimeoutMs: config.requestTimeoutMs,
      // Longer than the proxy in front keeps idle connections (Traefik: 90 s), so that it, not the
      // relay, closes them: otherwise it may send a request on a connection the relay is closing.
      keepAliveTimeoutMs: config.keepAliveTimeoutMs,
      sendTimeoutMs: config.sendTimeoutMs,
      onStalled: (res) => app.lifecycle.cutting(res, 'send_timeout')
    }),
    // Node.js' own refusals (a request it cannot parse, headers too large, a header timeout) are
    // answered, logged and counted like every other answer.
    clientErrorHandler: (err, socket) => app.lifecycle.socketError(err, socket),
    // An invalid URL is refused before any hook runs: start its lifecycle here.
    frameworkErrors: (error, request, reply) => {
      app.lifecycle.begin(request, reply)
      // CONNECT's authority-form target (`host:443`) is no URL to Fastify; the answer is the method's.
      if (request.method === 'CONNECT') handleError(withHeaders(new MethodNotAllowed('CONNECT'), { allow: ALLOW, connection: 'close' }), request, reply)
      else handleError(error, request, reply)
    },
    // During the drain, requests already on an open connection are served, not refused; when the
    // listener closes, connections between two requests are closed, busy ones finish.
    return503OnClosing: false,
    forceCloseConnections: 'idle'
  })

  function handleError (error: FastifyError | RelayError, request: FastifyRequest, reply: FastifyReply): FastifyReply {
    const statusCode = error.statusCode !== undefined && error.statusCode >= 400 && error.statusCode < 600 ? error.statusCode : 500
    const ours = isRelayError(error)
    // The relay's own errors are logged where they happen, when they deserve a line of their own.
    if (statusCode >= 500 && !ours) reply.log.error({ err: error }, 'request failed')
    if (ours) app.lifecycle.answeredWith(request, error.code)
    const { headers } = error as RelayError
    if (headers !== undefined) reply.headers(headers)
    // A body that was not read must not be mistaken for the next request on the connection.
    if (!request.raw.complete && hasBody(request)) reply.header('connection', 'close')
    // A 5xx message could carry internals (addresses, stack frames): clients get the status text,
    // unless it is one of the relay's own, written for them.
    const message = statusCode < 500 || ours ? error.message : (STATUS_CODES[statusCode] ?? 'Error')
    return reply.code(statusCode).send(errorBody(statusCode, message))
  }
  app.setErrorHandler(handleError)

  // Every path is proxied, so a miss here is a method the relay does not forward.
  app.setNotFoundHandler((request) => {
    throw withHeaders(new MethodNotAllowed(request.method), { allow: ALLOW })
  })

  await app.register(configPlugin, { config })
  // First of all hooks: every request's end is seen once, whatever ends it.
  await app.register(lifecyclePlugin)
  await app.register(accessLogPlugin)
  await app.register(healthPlugin)
  await app.register(metricsPlugin, { collectClusterMetrics: options.collectClusterMetrics })
  await app.register(requestRulesPlugin)
  // The proxied routes, behind the overload protection that keeps one GPU usable for everyone:
  // nothing here ever applies to /healthz, /livez or /metrics.
  await app.register(async function proxied (scope) {
    await scope.register(loadSheddingPlugin)
    await scope.register(rateLimitPlugin, { store: options.cluster?.rateLimitStore })
    await scope.register(admissionPlugin, { gate: options.cluster?.gate })
    await scope.register(proxyPlugin)
  })
  return app
}

function hasBody (request: FastifyRequest): boolean {
  const { headers } = request
  return headers['transfer-encoding'] !== undefined || (headers['content-length'] !== undefined && headers['content-length'] !== '0')
}
