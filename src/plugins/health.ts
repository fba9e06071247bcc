// Liveness and readiness. Readiness turns 503 "terminating" the moment shutdown begins, so Kubernetes
// takes the pod out of the Service while it still serves; and 503 "degraded" while the upstream's host
// name does not resolve. Responses never name the upstream: the details go to the log.
import fp from 'fastify-plugin'
import type { FastifyPluginAsync } from 'fastify'
import { DnsCheck } from '../lib/dns-check.js'

export type HealthStatus = 'ok' | 'degraded' | 'terminating'

export interface Health {
  /** True from the moment shutdown begins. */
  readonly terminating: boolean
  /** Readiness fails from now on and responses carry `Connection: close`. Idempotent. */
  beginShutdown(): void
}

declare module 'fastify' {
  interface FastifyInstance {
    health: Health
  }
  interface FastifyContextConfig {
    /** The `endpoint` label of the relay's own routes */
    endpointLabel?: string
    /** Kubernetes and Prometheus call these every few seconds: no per-request log line at info */
    probe?: boolean
  }
}

/** A probe times out after 1 s by default in Kubernetes: answer well within it. */
const PROBE_DNS_WAIT_MS = 300
const STARTUP_DNS_WAIT_MS = 2000
const NO_STORE = 'no-store'

const healthPlugin: FastifyPluginAsync = async (fastify) => {
  const dns = new DnsCheck(fastify.config.upstream.hostname)
  let terminating = false
  let reported: HealthStatus | undefined

  const report = (status: HealthStatus, error?: string): void => {
    if (status === reported) return
    const event = { event: 'health_changed', from: reported ?? 'starting', to: status, check: 'upstream_dns', upstreamHost: dns.hostname, error }
    reported = status
    if (status === 'degraded') fastify.log.warn(event, `readiness: ${status}: upstream host name does not resolve`)
    else fastify.log.info(event, `readiness: ${status}`)
  }

  fastify.decorate('health', {
    get terminating () { return terminating },
    beginShutdown () {
      if (terminating) return
      terminating = true
      report('terminating')
    }
  } satisfies Health)

  // During the drain window every response tells the client to reconnect, which sends it to a pod that stays.
  fastify.addHook('onRequest', (_request, reply, done) => {
    if (terminating) reply.header('connection', 'close')
    done()
  })

  fastify.addHook('onReady', async () => {
    const result = await dns.check(STARTUP_DNS_WAIT_MS)
    if (!terminating) report(result.ok ? 'ok' : 'degraded', result.error)
  })

  fastify.get('/livez', { config: { endpointLabel: '/livez', probe: true } }, async (_request, reply) => {
    reply.header('cache-control', NO_STORE)
    return { status: 'alive' }
  })

  fastify.get('/healthz', { config: { endpointLabel: '/healthz', probe: true } }, async (_request, reply) => {
    reply.header('cache-control', NO_STORE)
    if (terminating) {
      return reply.code(503).send({ status: 'terminating' })
    }
    const result = await dns.check(PROBE_DNS_WAIT_MS)
    if (terminating) return reply.code(503).send({ status: 'terminating' })
    report(result.ok ? 'ok' : 'degraded', result.error)
    if (!result.ok) {
      return reply.code(503).send({ status: 'degraded', checks: { upstream_dns: 'failing' } })
    }
    return { status: 'ok', checks: { upstream_dns: dns.needed ? 'ok' : 'skipped' } }
  })
}

export default fp(healthPlugin, { name: 'relay-health', fastify: '5.x', dependencies: ['relay-config'] })
