// RELAY_MAX_EVENT_LOOP_DELAY_MS: while this process's event loop lags more than that (a Pi at its CPU
// limit), new proxied requests get 503 at once instead of piling up behind the lag
// (@fastify/under-pressure). Registered in the proxied routes' scope only: probes keep answering, so
// Kubernetes does not restart a pod that is merely busy.
import fp from 'fastify-plugin'
import underPressure, { type FastifyUnderPressureOptions } from '@fastify/under-pressure'
import type { FastifyPluginAsync } from 'fastify'
import { rejection } from '../errors.js'

/** A lag is usually over within a sample or two (the check runs every SAMPLE_INTERVAL_MS). */
const RETRY_AFTER_SECONDS = 1
const SAMPLE_INTERVAL_MS = 250

const loadSheddingPlugin: FastifyPluginAsync = async (fastify) => {
  const { maxEventLoopDelayMs } = fastify.config.limits
  if (maxEventLoopDelayMs === 0) return
  await fastify.register(underPressure, {
    maxEventLoopDelay: maxEventLoopDelayMs,
    sampleInterval: SAMPLE_INTERVAL_MS,
    // What the handler returns is sent as the answer (its types say void; its code sends a value).
    pressureHandler: (() => {
      fastify.relayMetrics.rejected('overloaded')
      return rejection('overloaded', RETRY_AFTER_SECONDS)
    }) as unknown as NonNullable<FastifyUnderPressureOptions['pressureHandler']>
  })
}

export default fp(loadSheddingPlugin, { name: 'relay-load-shedding', fastify: '5.x', dependencies: ['relay-config', 'relay-metrics'] })
