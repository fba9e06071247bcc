// The messages a cluster primary and its workers exchange over IPC.

/** Primary → worker: SIGTERM or SIGINT reached the primary; drain and exit. */
export interface ShutdownMessage { type: 'relay:shutdown' }

/** Worker → primary: a client asked this worker for /metrics; send back the sum over all workers. */
export interface MetricsRequest { type: 'relay:metrics-request', id: number }

/** Primary → worker: the answer to a MetricsRequest. */
export interface MetricsResponse { type: 'relay:metrics-response', id: number, body?: string, error?: string }

export function isMessage<T extends { type: string }> (value: unknown, type: T['type']): value is T {
  return typeof value === 'object' && value !== null && (value as { type?: unknown }).type === type
}
