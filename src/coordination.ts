// Which of the pod-wide limits a cluster's primary keeps (read by both the primary and its workers, so
// that they agree): the GPU queue when there is a cap or a per-client limit, and the rate-limit count
// when there is a rate limit and no Redis to keep it.
import type { RelayConfig } from './config.js'

export function needsPrimaryGate ({ limits }: RelayConfig): boolean {
  return limits.maxConcurrent > 0 || limits.maxConcurrentPerClient > 0
}

export function needsPrimaryRateStore ({ limits, redisUrl }: RelayConfig): boolean {
  return limits.rateLimit > 0 && redisUrl === undefined
}
