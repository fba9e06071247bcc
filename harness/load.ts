// A steady load of keep-alive clients mixing small GETs, POSTs and SSE streams, recording every
// outcome. Used by the resilience tests and by the soak (harness/soak.ts).
import { Agent, request } from 'undici'

export type RequestKind = 'get' | 'post' | 'sse'

export interface LoadOptions {
  /** The relay's base URL, e.g. http://127.0.0.1:5010 */
  url: string
  /** Concurrent clients, each sending one request after the other on keep-alive connections */
  concurrency: number
  /** Stops starting new requests after this long (or when `signal` aborts) */
  durationMs: number
  /** Relative weights of the request kinds */
  mix?: Partial<Record<RequestKind, number>>
  /** SSE streams: events per stream and the upstream's interval between them */
  sse?: { tokens: number, intervalMs: number }
  signal?: AbortSignal
  /** Per-request timeout: a request that hangs longer counts as an error */
  timeoutMs?: number
}

export interface Outcome {
  kind: RequestKind
  /** The X-Request-Id it was sent with, to find it in the relay's log */
  id: string
  /** HTTP status, or 0 when the request failed at the socket */
  status: number
  /** Error code for a failed request (ECONNREFUSED, UND_ERR_SOCKET, ...) */
  error?: string
  /** A stream that ended without `data: [DONE]`, or a body that did not match */
  incomplete?: boolean
  startedAt: number
  ms: number
}

export interface LoadResult {
  outcomes: Outcome[]
  elapsedMs: number
  requestsPerSecond: number
  p50: number
  p99: number
  /** Outcomes that were not a complete 2xx */
  failures: Outcome[]
}

const POST_BODY = JSON.stringify({ messages: [{ role: 'user', content: 'hello' }] })

function percentile (sorted: number[], p: number): number {
  if (sorted.length === 0) return 0
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))] as number
}

function pick (mix: Record<RequestKind, number>): RequestKind {
  const total = mix.get + mix.post + mix.sse
  let roll = Math.random() * total
  for (const kind of ['get', 'post', 'sse'] as const) {
    roll -= mix[kind]
    if (roll < 0) return kind
  }
  return 'get'
}

let sequence = 0

/** Sends one request of the given kind and reports how it ended (never throws). */
export async function one (dispatcher: Agent, base: string, kind: RequestKind, sse: { tokens: number, intervalMs: number }, timeoutMs: number): Promise<Outcome> {
  const id = `load-${process.pid}-${sequence++}`
  const startedAt = performance.now()
  const signal = AbortSignal.timeout(timeoutMs)
  const headers = { 'x-request-id': id, 'content-type': 'application/json' }
  try {
    if (kind === 'get') {
      const res = await request(`${base}/v1/models`, { dispatcher, signal, headers })
      const body = await res.body.text()
      return { kind, id, status: res.statusCode, incomplete: !body.includes('demo-model'), startedAt, ms: performance.now() - startedAt }
    }
    if (kind === 'post') {
      const res = await request(`${base}/echo`, { method: 'POST', body: POST_BODY, headers, dispatcher, signal })
      const body = await res.body.text()
      return { kind, id, status: res.statusCode, incomplete: body !== POST_BODY, startedAt, ms: performance.now() - startedAt }
    }
    const res = await request(`${base}/stream?tokens=${sse.tokens}&interval=${sse.intervalMs}`, { dispatcher, signal, headers })
    const body = await res.body.text()
    return { kind, id, status: res.statusCode, incomplete: !body.endsWith('data: [DONE]\n\n'), startedAt, ms: performance.now() - startedAt }
  } catch (err) {
    const code = (err as { code?: string }).code ?? (err as Error).name
    return { kind, id, status: 0, error: code, startedAt, ms: performance.now() - startedAt }
  }
}

export async function runLoad (options: LoadOptions): Promise<LoadResult> {
  const mix = { get: 1, post: 1, sse: 0, ...options.mix }
  const sse = options.sse ?? { tokens: 5, intervalMs: 20 }
  const timeoutMs = options.timeoutMs ?? 10_000
  const dispatcher = new Agent({ connections: options.concurrency, keepAliveTimeout: 30_000 })
  const outcomes: Outcome[] = []
  const started = performance.now()
  const deadline = started + options.durationMs
  const keepGoing = (): boolean => performance.now() < deadline && options.signal?.aborted !== true

  await Promise.all(Array.from({ length: options.concurrency }, async () => {
    while (keepGoing()) outcomes.push(await one(dispatcher, options.url, pick(mix), sse, timeoutMs))
  }))
  const elapsedMs = performance.now() - started
  await dispatcher.close()

  const latencies = outcomes.map((o) => o.ms).sort((a, b) => a - b)
  return {
    outcomes,
    elapsedMs,
    requestsPerSecond: outcomes.length / (elapsedMs / 1000),
    p50: percentile(latencies, 0.5),
    p99: percentile(latencies, 0.99),
    failures: outcomes.filter((o) => o.status < 200 || o.status >= 300 || o.incomplete === true)
  }
}

/** A one-line summary of the failures, e.g. "3 × ECONNREFUSED, 1 × 502" */
export function describeFailures (failures: Outcome[]): string {
  const counts = new Map<string, number>()
  for (const f of failures) {
    const key = f.error ?? (f.incomplete === true ? `${f.status} incomplete ${f.kind}` : String(f.status))
    counts.set(key, (counts.get(key) ?? 0) + 1)
  }
  return [...counts].map(([key, n]) => `${n} × ${key}`).join(', ') || 'none'
}
