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
