// The messages a cluster primary and its workers exchange over IPC.
import type { MetricObjectWithValues, MetricValue } from 'prom-client'

/** Primary → worker: SIGTERM or SIGINT reached the primary; drain and exit. */
export interface ShutdownMessage { type: 'relay:shutdown' }

/** Worker → primary: a client asked this worker for /metrics; send back the sum over all workers. */
export interface MetricsRequest { type: 'relay:metrics-request', id: number }

/** Primary → worker: the answer to a MetricsRequest. */
export interface MetricsResponse { type: 'relay:metrics-response', id: number, body?: string, error?: string }

/** Primary → worker: send me your registry's metrics. */
export interface SnapshotRequest { type: 'relay:metrics-snapshot-request', id: number }

/** Worker → primary: one worker's metrics, as prom-client's getMetricsAsJSON() gives them. */
export interface SnapshotResponse { type: 'relay:metrics-snapshot', id: number, metrics: Array<MetricObjectWithValues<MetricValue<string>>> }

export function isMessage<T extends { type: string }> (value: unknown, type: T['type']): value is T {
  return typeof value === 'object' && value !== null && (value as { type?: unknown }).type === type
}

/** Worker → primary: may this request (of this client) go to the upstream? */
export interface AdmitRequest { type: 'relay:admit', id: number, key: string }

/** Primary → worker: the answer, once; a queued request gets it when its slot frees. */
export interface AdmitResponse { type: 'relay:admitted', id: number, refused?: 'queue_full' | 'client_concurrency', retryAfterSeconds?: number }

/** Worker → primary: the request ended, or left the queue. */
export interface AdmitRelease { type: 'relay:admit-release', id: number }

/** Worker → primary: count one more request of this client in the rate-limit window. */
export interface RateIncrement { type: 'relay:rate-incr', id: number, key: string, timeWindow: number, max: number }

/** Primary → worker: the count so far in the window, and the milliseconds the window has left. */
export interface RateCount { type: 'relay:rate-count', id: number, current: number, ttl: number }
