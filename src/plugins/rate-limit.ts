// RELAY_RATE_LIMIT proxied requests per client per RELAY_RATE_LIMIT_WINDOW_SECONDS, a fixed window
// counted in one of @fastify/rate-limit's stores: in this process, in the cluster primary
// (RELAY_WORKERS > 1, rate-limit-stores.ts), or in Redis (RELAY_REDIS_URL) so that every replica
// shares one count. Redis is optional and never in the way:
// while it is unreachable the relay lets requests through (the GPU's queue still protects the GPU),
// says so once and once more when it is back, and counts the failed operations. Every proxied
// response carries the IETF draft's RateLimit-Limit, -Remaining and -Reset; a refusal is 429 with
// Retry-After, the seconds until the window resets.
import fp from 'fastify-plugin'
import { Redis } from 'ioredis'
import type { FastifyPluginAsync } from 'fastify'
import { LocalStore, RATE_LIMIT_CLIENTS, RedisStore, type RateLimitStore } from '../rate-limit-stores.js'
import { clientKey } from '../lib/client-key.js'
import { rejection } from '../errors.js'

export interface RateLimitPluginOptions {
  /** A cluster worker's store, which counts in the primary (used when there is no Redis) */
  store?: RateLimitStore
}

/** The prefix of the relay's keys in Redis. */
const REDIS_NAMESPACE = 'tokenplace-relay:rate-limit:'
/** A Redis command that takes longer than this fails (and the request goes through). */
const REDIS_COMMAND_TIMEOUT_MS = 250

const rateLimitPlugin: FastifyPluginAsync<RateLimitPluginOptions> = async (fastify, options) => {
  const { limits, redisUrl } = fastify.config
  if (limits.rateLimit === 0) return
  const metrics = fastify.relayMetrics

  let store: RateLimitStore
  if (redisUrl !== undefined) {
    const redis = connectRedis(fastify, redisUrl)
    fastify.addHook('onClose', async () => { redis.disconnect() })
    store = new RedisStore(false, false, redis, REDIS_NAMESPACE)
  } else {
    store = options.store ?? new LocalStore(false, false, RATE_LIMIT_CLIENTS)
  }

  const { rateLimit: max, rateLimitWindowMs: window } = limits
  // The store is called directly rather than through the plugin's hook: its in-memory store answers
  // synchronously, and a hook that waits for no promise costs a proxied request nothing it need not.
  fastify.addHook('onRequest', (request, reply, done) => {
    store.incr(clientKey(request.arrival.ip), (err, result) => {
      // The store failed (Redis away, the primary gone): count it and let the request through.
      if (err !== null || result === undefined) {
        metrics.rateLimitStoreError()
        done()
        return
      }
      const resetSeconds = Math.max(1, Math.ceil(result.ttl / 1000))
      reply.header('ratelimit-limit', max)
        .header('ratelimit-remaining', Math.max(0, max - result.current))
        .header('ratelimit-reset', resetSeconds)
      if (result.current <= max) {
        done()
        return
      }
      metrics.rejected('rate_limit')
      done(rejection('rate_limit', resetSeconds))
    }, window, max)
  })
}

/** An ioredis client that never holds a request: no offline queue, short timeouts, endless reconnects. */
function connectRedis (fastify: Parameters<FastifyPluginAsync>[0], url: string): Redis {
  // Logged by host only: the URL carries the password.
  const redisHost = new URL(url).host
  const redis = new Redis(url, {
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    commandTimeout: REDIS_COMMAND_TIMEOUT_MS,
    connectTimeout: 2_000,
    retryStrategy: (attempt) => Math.min(attempt * 200, 2_000)
  })
  let state: 'connecting' | 'up' | 'down' = 'connecting'
  redis.on('ready', () => {
    if (state === 'down') fastify.log.info({ redisHost }, 'rate-limit store reachable again: rate limits are shared again')
    state = 'up'
  })
  redis.on('error', (err: Error) => {
    if (state === 'down') return
    state = 'down'
    fastify.log.warn({ redisHost, err: { message: err.message, code: (err as { code?: string }).code } },
      'rate-limit store unreachable: requests go through without a rate limit until it is back')
  })
  return redis
}

export default fp(rateLimitPlugin, { name: 'relay-rate-limit', fastify: '5.x', dependencies: ['relay-config', 'relay-lifecycle', 'relay-metrics'] })
