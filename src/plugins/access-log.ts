// One line per request, written when its response has ended (the lifecycle says how), instead of
// Fastify's two. The probe routes (/healthz, /livez, /metrics) are called every few seconds: their
// lines are written at debug only.
import fp from 'fastify-plugin'
import type { FastifyPluginAsync } from 'fastify'
import type { EndedRequest } from './lifecycle.js'

const MESSAGES = {
  completed: 'request completed',
  aborted: 'request aborted by the client',
  upstream: 'response cut: the upstream failed',
  shutdown: 'response cut at the shutdown timeout',
  send_timeout: 'response cut: the client stopped reading',
  request_timeout: 'request cut: the client did not send it in time'
} as const

export function accessLogMessage (ended: EndedRequest): string {
  if (ended.outcome === 'cut') return MESSAGES[ended.cause ?? 'upstream']
  return MESSAGES[ended.outcome]
}

const accessLogPlugin: FastifyPluginAsync = async (fastify) => {
  const log = fastify.log
  const { logLevel } = fastify.config
  const debugEnabled = logLevel === 'debug' || logLevel === 'trace'

  fastify.lifecycle.onEnd((ended) => {
    const probe = ended.request?.routeOptions.config.probe === true
    if (probe && !debugEnabled) return
    // Flat fields, not `req`/`res`: Fastify's serializers for those would log the query string.
    const line = {
      reqId: ended.id,
      method: ended.method,
      path: pathOf(ended.url),
      statusCode: ended.statusCode,
      remoteAddress: ended.arrival.ip,
      responseTime: Math.round(ended.durationMs * 100) / 100,
      code: ended.code
    }
    if (probe) log.debug(line, accessLogMessage(ended))
    else log.info(line, accessLogMessage(ended))
  })
}

function pathOf (url: string): string {
  const queryStart = url.indexOf('?')
  return queryStart === -1 ? url : url.slice(0, queryStart)
}

export default fp(accessLogPlugin, { name: 'relay-access-log', fastify: '5.x', dependencies: ['relay-config', 'relay-lifecycle'] })
