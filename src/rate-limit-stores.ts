// Where RELAY_RATE_LIMIT's counts live: @fastify/rate-limit's own stores (in memory, or Redis for every
// replica), and for RELAY_WORKERS > 1 without Redis, in the primary, so that 60 a minute means 60 for
// the pod, not 60 per worker: a store in each worker asks the primary, which counts in memory.
import cluster from 'node:cluster'
import { createRequire } from 'node:module'
import { isMessage, type RateCount, type RateIncrement } from './cluster-messages.js'

/** What @fastify/rate-limit asks of a store. */
export interface RateLimitStore {
  incr(key: string, callback: (err: Error | null, result?: { current: number, ttl: number }) => void, timeWindow: number, max: number): void
  child(routeOptions: unknown): RateLimitStore
}

type LocalStoreConstructor = new (continueExceeding: boolean, exponentialBackoff: boolean, cache: number) => RateLimitStore
type RedisStoreConstructor = new (continueExceeding: boolean, exponentialBackoff: boolean, redis: unknown, namespace: string) => RateLimitStore

const require = createRequire(import.meta.url)
/** @fastify/rate-limit's in-memory store: a fixed window per key in an LRU of `cache` keys. */
export const LocalStore = require('@fastify/rate-limit/store/LocalStore.js') as LocalStoreConstructor
/** @fastify/rate-limit's Redis store: one atomic script per request (INCR, and PEXPIRE on the first). */
export const RedisStore = require('@fastify/rate-limit/store/RedisStore.js') as RedisStoreConstructor

/** Clients whose window is remembered; a client pushed out of it starts a new window. */
export const RATE_LIMIT_CLIENTS = 50_000
/** How long a worker waits for the primary's count before letting the request through. */
const COUNT_TIMEOUT_MS = 1_000

class PrimaryUnavailable extends Error {
  readonly code = 'RELAY_PRIMARY_UNAVAILABLE'
}

/** Worker: a store that counts in the primary. */
export class PrimaryRateStore implements RateLimitStore {
  readonly #pending = new Map<number, { callback: Parameters<RateLimitStore['incr']>[1], timer: NodeJS.Timeout }>()
  #nextId = 0

  constructor () {
    process.on('message', (message) => {
      if (!isMessage<RateCount>(message, 'relay:rate-count')) return
      const pending = this.#pending.get(message.id)
      if (pending === undefined) return
      this.#pending.delete(message.id)
      clearTimeout(pending.timer)
      pending.callback(null, { current: message.current, ttl: message.ttl })
    })
  }

  incr (key: string, callback: Parameters<RateLimitStore['incr']>[1], timeWindow: number, max: number): void {
    const id = ++this.#nextId
    const timer = setTimeout(() => {
      this.#pending.delete(id)
      callback(new PrimaryUnavailable('the primary did not count the request in time'))
    }, COUNT_TIMEOUT_MS)
    this.#pending.set(id, { callback, timer })
    process.send?.({ type: 'relay:rate-incr', id, key, timeWindow, max } satisfies RateIncrement)
  }

  child (): RateLimitStore {
    return this
  }
}

/** Primary: counts every worker's requests in one store. */
export function serveRateLimit (): void {
  const store = new LocalStore(false, false, RATE_LIMIT_CLIENTS)
  cluster.on('message', (worker, message) => {
    if (!isMessage<RateIncrement>(message, 'relay:rate-incr')) return
    store.incr(message.key, (_err, result) => {
      if (worker.isConnected()) worker.send({ type: 'relay:rate-count', id: message.id, current: result?.current ?? 0, ttl: result?.ttl ?? 0 } satisfies RateCount, () => {})
    }, message.timeWindow, message.max)
  })
}
