// The GPU's door: RELAY_MAX_CONCURRENT proxied requests at the upstream at once for the whole pod,
// the rest waiting (RELAY_QUEUE_LIMIT, RELAY_QUEUE_TIMEOUT_SECONDS) in a queue fair between clients,
// and at most RELAY_MAX_CONCURRENT_PER_CLIENT in flight or waiting for any one client. A request waits
// before anything of its body is read and before the upstream is contacted, and holds its slot until
// its response has ended: a stream holds it for the whole generation. Registered in the proxied
// routes' scope only (app.ts): probes and /metrics never wait here.
import fp from 'fastify-plugin'
import type { FastifyPluginAsync, FastifyRequest } from 'fastify'
import { LocalGate, type Gate, type GateHandle } from '../admission-gate.js'
import { clientKey } from '../lib/client-key.js'
import { rejection } from '../errors.js'

export interface AdmissionPluginOptions {
  /** A cluster worker's gate, which asks the primary; a single process keeps its own. */
  gate?: Gate
}

interface Place {
  handle: GateHandle
  timer: NodeJS.Timeout | undefined
}

const kPlace = Symbol('relay.admission')
type WithPlace = FastifyRequest & { [kPlace]?: Place }

const admissionPlugin: FastifyPluginAsync<AdmissionPluginOptions> = async (fastify, options) => {
  const { limits } = fastify.config
  const metrics = fastify.relayMetrics
  const gate = options.gate ?? new LocalGate({
    maxConcurrent: limits.maxConcurrent,
    queueLimit: limits.queueLimit,
    maxPerClient: limits.maxConcurrentPerClient
  })
  metrics.admissionGauges(() => ({ inFlight: gate.inFlight, queued: gate.queued }))
  const capped = limits.maxConcurrent > 0

  // preParsing, not onRequest: after every cheaper refusal (a declared body over the limit, the rate
  // limit), and before the body is touched, so a queued upload stays in the socket.
  fastify.addHook('preParsing', (request, reply, payload, done) => {
    const waitingSince = reply.elapsedTime
    const place: Place = { handle: { id: 0 }, timer: undefined }
    let answered = false
    place.handle = gate.acquire(clientKey(request.arrival.ip), (result) => {
      answered = true
      clearTimeout(place.timer)
      if (result.admitted) {
        if (capped) metrics.queueWait((reply.elapsedTime - waitingSince) / 1000)
        done(null, payload)
        return
      }
      metrics.rejected(result.reason)
      done(rejection(result.reason, result.retryAfterSeconds))
    })
    ;(request as WithPlace)[kPlace] = place
    if (!answered && capped) {
      place.timer = setTimeout(() => {
        gate.release(place.handle)
        metrics.rejected('queue_timeout')
        done(rejection('queue_timeout', Math.max(1, Math.ceil(limits.queueTimeoutMs / 1000))))
      }, limits.queueTimeoutMs)
    }
  })

  // Whatever ended the request (its response, the client leaving the queue, the shutdown), its slot
  // or its place in the queue is freed; a queued request that is gone never reaches the upstream.
  fastify.lifecycle.onEnd((ended) => {
    const place = (ended.request as WithPlace | undefined)?.[kPlace]
    if (place === undefined) return
    clearTimeout(place.timer)
    gate.release(place.handle)
  })
}

export default fp(admissionPlugin, { name: 'relay-admission', fastify: '5.x', dependencies: ['relay-config', 'relay-lifecycle', 'relay-metrics'] })
