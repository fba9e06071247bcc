// Prometheus metrics: the process defaults (fastify-metrics), the relay's request counter and duration
// histogram, the upstream's time to first byte, upstream errors by reason and build info, all in one
// prom-client registry per process.
// Route metrics are the relay's own rather than fastify-metrics': the endpoint label depends on the
// status (a 404 from the upstream is "unmatched"), must stay bounded, and requests the client aborts
// count too (with status 499), which an onResponse hook never sees: they are counted when the
// lifecycle says a request has ended.
import { createHash, timingSafeEqual } from 'node:crypto'
import fp from 'fastify-plugin'
import fastifyMetricsModule from 'fastify-metrics'
import client from 'prom-client'
import type { FastifyPluginAsync, FastifyRequest } from 'fastify'
import { MetricsUnauthorized, MetricsUnavailable, withHeaders } from '../errors.js'
import { EndpointLabeler, UNMATCHED } from '../lib/endpoint-label.js'
import { UPSTREAM_ERROR_REASONS, type UpstreamErrorReason } from '../forward/upstream-errors.js'

export interface RelayMetrics {
  /** This process's registry: what a cluster worker hands the primary for aggregation */
  readonly registry: client.Registry
  upstreamError(reason: UpstreamErrorReason): void
  /** The first byte of a proxied response's body arrived (for a stream, the first token). */
  firstByte(request: FastifyRequest, statusCode: number, seconds: number): void
}

declare module 'fastify' {
  interface FastifyInstance {
    relayMetrics: RelayMetrics
  }
  interface FastifyContextConfig {
    /** Not counted in the request metrics (the /metrics route itself) */
    skipMetrics?: boolean
  }
}

export interface MetricsPluginOptions {
  /** Set in cluster workers: returns the exposition of all workers, summed by the primary. */
  collectClusterMetrics?: () => Promise<string>
}

// LLM calls run from milliseconds (a cached model list) to minutes (a long generation).
// A CommonJS module with `exports.default`: Node's ESM loader hands us the exports object.
const fastifyMetrics = fastifyMetricsModule.default

const DURATION_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600]
// A GPU's first token: tens of milliseconds for a warm small model, minutes for a cold large one.
const FIRST_BYTE_BUCKETS = [0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60, 120, 300]

const metricsPlugin: FastifyPluginAsync<MetricsPluginOptions> = async (fastify, options) => {
  const { config } = fastify
  const registry = new client.Registry()

  await fastify.register(fastifyMetrics, {
    promClient: client,
    endpoint: null,
    routeMetrics: { enabled: false },
    defaultMetrics: { enabled: true, register: registry }
  })

  const labelNames = ['method', 'endpoint', 'status'] as const
  const requests = new client.Counter({
    name: 'relay_http_requests_total',
    help: 'HTTP requests completed by the relay (excluding /metrics), by method, endpoint and status.',
    labelNames,
    registers: [registry]
  })
  const duration = new client.Histogram({
    name: 'relay_http_request_duration_seconds',
    help: 'Time from the request arriving to the response ending, by method, endpoint and status.',
    labelNames,
    buckets: DURATION_BUCKETS,
    registers: [registry]
  })
  const firstByte = new client.Histogram({
    name: 'relay_upstream_time_to_first_byte_seconds',
    help: 'Time from a proxied request arriving to the first byte of the upstream\'s response body (for a stream, the first token), by method and endpoint.',
    labelNames: ['method', 'endpoint'],
    buckets: FIRST_BYTE_BUCKETS,
    registers: [registry]
  })
  const upstreamErrors = new client.Counter({
    name: 'relay_upstream_errors_total',
    help: 'Upstream requests that failed, by reason: connect, dns, timeout or reset.',
    labelNames: ['reason'],
    registers: [registry]
  })
  for (const reason of UPSTREAM_ERROR_REASONS) upstreamErrors.inc({ reason }, 0)
  const buildInfo = new client.Gauge({
    name: 'relay_build_info',
    help: 'Always 1; the labels say which build of the relay is running.',
    labelNames: ['version', 'revision'],
    registers: [registry],
    // One per worker would sum to the number of workers.
    aggregator: 'max'
  })
  buildInfo.set({ version: config.build.version, revision: config.build.revision }, 1)

  const labeler = new EndpointLabeler(config.metricsMaxEndpoints)

  fastify.lifecycle.onEnd((ended) => {
    const route = ended.request?.routeOptions.config
    if (route?.skipMetrics === true) return
    const own = route?.endpointLabel
    const status = ended.statusCode
    const unmatched = ended.request === undefined || ended.request.is404 || status === 404
    const labels = { method: ended.method, endpoint: own ?? (unmatched ? UNMATCHED : labeler.label(ended.url)), status }
    requests.inc(labels)
    duration.observe(labels, ended.durationMs / 1000)
  })

  fastify.decorate('relayMetrics', {
    registry,
    upstreamError (reason: UpstreamErrorReason) {
      upstreamErrors.inc({ reason })
    },
    firstByte (request, statusCode, seconds) {
      firstByte.observe({ method: request.method, endpoint: statusCode === 404 ? UNMATCHED : labeler.label(request.url) }, seconds)
    }
  } satisfies RelayMetrics)

  const token = config.metricsToken
  const expected = token === undefined ? undefined : sha256(`Bearer ${token}`)

  fastify.get('/metrics', {
    config: { skipMetrics: true, probe: true },
    onRequest: async (request, reply) => {
      reply.header('cache-control', 'no-store')
      if (expected === undefined) return
      const given = request.headers.authorization
      if (given === undefined || !timingSafeEqual(sha256(given), expected)) {
        throw withHeaders(new MetricsUnauthorized(), { 'www-authenticate': 'Bearer realm="metrics"' })
      }
    }
  }, async (request, reply) => {
    let body: string
    try {
      body = options.collectClusterMetrics === undefined
        ? await registry.metrics()
        : await options.collectClusterMetrics()
    } catch (err) {
      request.log.error({ err }, 'metrics collection failed')
      throw new MetricsUnavailable()
    }
    return reply.type(registry.contentType).send(body)
  })
}

function sha256 (value: string): Buffer {
  return createHash('sha256').update(value).digest()
}

export default fp(metricsPlugin, { name: 'relay-metrics', fastify: '5.x', dependencies: ['relay-config', 'relay-lifecycle'] })
