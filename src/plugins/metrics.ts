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
import { MetricsUnauthorized, MetricsUnavailable, REJECTION_REASONS, withHeaders, type RejectionReason } from '../errors.js'
import { EndpointLabeler, UNMATCHED } from '../lib/endpoint-label.js'
import { UPSTREAM_ERROR_REASONS, type UpstreamErrorReason } from '../forward/upstream-errors.js'

export interface RelayMetrics {
  /** This process's registry: what a cluster worker hands the primary for aggregation */
  readonly registry: client.Registry
  upstreamError(reason: UpstreamErrorReason): void
  /** The first byte of a proxied response's body arrived (for a stream, the first token). */
  firstByte(request: FastifyRequest, statusCode: number, seconds: number): void
  /** A proxied request was refused before the upstream was contacted. */
  rejected(reason: RejectionReason): void
  /** A proxied request got its slot after waiting this long (0 when it waited for none). */
  queueWait(seconds: number): void
  /** Where the in-flight and queued gauges read their values, at each scrape. */
  admissionGauges(read: () => { inFlight: number, queued: number }): void
  /** The shared rate-limit store (Redis, or the primary) failed an operation. */
  rateLimitStoreError(): void
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
// A wait for a GPU slot: none at all, up to RELAY_QUEUE_TIMEOUT_SECONDS (30 s by default) and beyond.
const QUEUE_WAIT_BUCKETS = [0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120]

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
  let admission = (): { inFlight: number, queued: number } => ({ inFlight: 0, queued: 0 })
  // Summed over workers, like the counters: each worker reports the requests it holds.
  registry.registerMetric(new client.Gauge({
    name: 'relay_upstream_requests_in_flight',
    help: 'Proxied requests holding a GPU slot (with no cap: proxied requests in flight).',
    registers: [],
    collect () { this.set(admission().inFlight) }
  }))
  registry.registerMetric(new client.Gauge({
    name: 'relay_queue_length',
    help: 'Proxied requests waiting for a GPU slot.',
    registers: [],
    collect () { this.set(admission().queued) }
  }))
  const queueWait = new client.Histogram({
    name: 'relay_queue_wait_seconds',
    help: 'Time proxied requests waited for a GPU slot before they got one (0 for those that did not wait), with RELAY_MAX_CONCURRENT set.',
    buckets: QUEUE_WAIT_BUCKETS,
    registers: [registry]
  })
  const rejected = new client.Counter({
    name: 'relay_rejected_requests_total',
    help: 'Proxied requests refused before the upstream was contacted, by reason: queue_full, queue_timeout, client_concurrency, rate_limit or overloaded.',
    labelNames: ['reason'],
    registers: [registry]
  })
  for (const reason of REJECTION_REASONS) rejected.inc({ reason }, 0)
  const storeErrors = new client.Counter({
    name: 'relay_rate_limit_store_errors_total',
    help: 'Operations of the shared rate-limit store (Redis, or the cluster primary) that failed; the request was let through.',
    registers: [registry]
  })
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
    },
    rejected (reason) { rejected.inc({ reason }) },
    queueWait (seconds) { queueWait.observe(seconds) },
    admissionGauges (read) { admission = read },
    rateLimitStoreError () { storeErrors.inc() }
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
