// What a run records, how it is summarised (medians over rounds, ratios and differences to nginx
// within each round) and how the targets are judged. Pure: no I/O.
import { max, median, percentile, roundDifferences, roundRatios } from './stats.js'
import type { SystemId } from './systems.js'

export interface ThroughputRun {
  system: SystemId
  round: number
  connections: number
  requests: number
  seconds: number
  requestsPerSecond: number
  /** CPU (user + system, all the system's processes) per answered request, µs */
  cpuUsPerRequest: number
  latencyMs: { p50: number, p90: number, p99: number, max: number }
  /** Highest VmRSS (summed over the system's processes) sampled during the run, bytes */
  rssMaxBytes: number
  /** CPU used by wrk and the upstreams during the run, in cores */
  generatorCores: number
  /** CPU used by processes the benchmark did not start during the run, in cores */
  foreignCores: number
  command: string
}

export interface SseRun {
  system: SystemId | 'direct'
  round: number
  firstEventMs: number
  eventDelaysMs: number[]
}

export interface TransferRun {
  system: SystemId
  direction: 'upload' | 'download'
  bytes: number
  seconds: number
  baselineRssBytes: number
  /** Peak RSS during the transfer minus the baseline, bytes */
  peakGrowthBytes: number
  /** How the peak was read: VmHWM after a reset (exact) or VmRSS samples (can miss a short peak) */
  peakMethod: 'VmHWM' | 'sampled'
  /** The highest RSS sampled (every 25 ms) in each quarter of the bytes */
  quarterMaxRssBytes: number[]
}

export interface IdleRun {
  system: SystemId
  connections: number
  rssBeforeBytes: number
  rssAfterBytes: number
}

export interface WorkersRun {
  round: number
  workers: 1 | 2
  connections: number
  requestsPerSecond: number
  cpus: string
}

export interface SystemRecord {
  id: SystemId
  label: string
  description: string
  /** VmRSS right after start, before any request, summed over its processes (phase 1) */
  idleRssBytes: number
  processes: number
}

export interface RunMeta {
  date: string
  elapsedSeconds: number
  machine: { cpuModel: string, cores: number, kernel: string, memoryBytes: number, virtualised: boolean }
  versions: Record<string, string>
  pinning: { proxyCpus: string | undefined, generatorCpus: string | undefined, note: string }
  load: {
    before: number
    after: number
    samples: Array<{ when: string, one: number }>
    /** ms a fixed loop took on the system under test's CPU at each sample (best of 5) */
    speedProbes?: Array<{ when: string, ms: number }>
  }
  maxLoad: number
  options: Record<string, unknown>
  commands: string[]
  configs: Array<{ name: string, text: string }>
  notes: string[]
}

export interface Results {
  meta: RunMeta
  systems: SystemRecord[]
  throughput: ThroughputRun[]
  sse: SseRun[]
  transfers: TransferRun[]
  idle: IdleRun[]
  workers: WorkersRun[]
  /** Why the workers scenario did not run, when it did not */
  workersSkipped?: string
}

export interface SystemSummary {
  id: SystemId
  label: string
  /** By connections: medians over rounds */
  rps: Record<number, number>
  ratioToNginx: Record<number, number>
  cpuUsPerRequest: Record<number, number>
  /** Median over rounds of (CPU per request / nginx's in the same round) */
  cpuRatioToNginx: Record<number, number>
  p50Ms: Record<number, number>
  p99Ms: Record<number, number>
  /** Median over rounds of (this p99 − nginx's p99 in the same round) */
  p99OverNginxMs: Record<number, number>
  idleRssBytes: number
  loadRssBytes: number
  sse?: { firstEventMs: number, eventDelayMs: number, eventDelayP99Ms: number, firstEventOverNginxMs: number, eventDelayOverNginxMs: number }
  upload?: TransferRun
  download?: TransferRun
  idleConnectionBytes?: number
}

export interface Summary {
  /** The connection count the throughput figures and targets use (50, or the highest run) */
  loadConnections: number
  systems: SystemSummary[]
  direct?: { firstEventMs: number, eventDelayMs: number, eventDelayP99Ms: number }
  foreignCores: { median: number, max: number }
  generatorCoresMax: number
  /** Median over rounds of the 2-worker / 1-worker throughput ratio */
  workersRatio?: number
}

function byRound<T> (runs: readonly T[], pick: (r: T) => number, round: (r: T) => number): Map<number, number> {
  const groups = new Map<number, number[]>()
  for (const r of runs) {
    const list = groups.get(round(r)) ?? []
    list.push(pick(r))
    groups.set(round(r), list)
  }
  return new Map([...groups].map(([k, v]) => [k, median(v)]))
}

/** Per-stream median of the event delays: a stream, not an event, is the unit that alternates. */
function streamDelay (r: SseRun): number {
  return median(r.eventDelaysMs)
}

export function summarise (results: Results): Summary {
  const connectionsRun = [...new Set(results.throughput.map((r) => r.connections))].sort((a, b) => a - b)
  const loadConnections = connectionsRun.includes(50) ? 50 : (connectionsRun.at(-1) ?? 50)
  const tp = (system: SystemId | 'direct', c: number): ThroughputRun[] => results.throughput.filter((r) => r.system === system && r.connections === c)
  const sse = (system: SystemId | 'direct'): SseRun[] => results.sse.filter((r) => r.system === system)

  const sseStats = (system: SystemId | 'direct'): { firstEventMs: number, eventDelayMs: number, eventDelayP99Ms: number } | undefined => {
    const runs = sse(system)
    if (runs.length === 0) return undefined
    const delays = runs.flatMap((r) => r.eventDelaysMs)
    return { firstEventMs: median(runs.map((r) => r.firstEventMs)), eventDelayMs: median(delays), eventDelayP99Ms: percentile(delays, 99) }
  }

  const nginxSse = sse('nginx')
  const systems: SystemSummary[] = results.systems.filter((s) => s.id !== 'relay-2w').map((s) => {
    const summary: SystemSummary = {
      id: s.id,
      label: s.label,
      rps: {},
      ratioToNginx: {},
      cpuUsPerRequest: {},
      cpuRatioToNginx: {},
      p50Ms: {},
      p99Ms: {},
      p99OverNginxMs: {},
      idleRssBytes: s.idleRssBytes,
      loadRssBytes: max(results.throughput.filter((r) => r.system === s.id).map((r) => r.rssMaxBytes))
    }
    for (const c of connectionsRun) {
      const runs = tp(s.id, c)
      if (runs.length === 0) continue
      const reference = tp('nginx', c)
      summary.rps[c] = median(runs.map((r) => r.requestsPerSecond))
      summary.cpuUsPerRequest[c] = median(runs.map((r) => r.cpuUsPerRequest))
      summary.p50Ms[c] = median(runs.map((r) => r.latencyMs.p50))
      summary.p99Ms[c] = median(runs.map((r) => r.latencyMs.p99))
      const round = (r: ThroughputRun): number => r.round
      summary.cpuRatioToNginx[c] = median(roundRatios(byRound(runs, (r) => r.cpuUsPerRequest, round), byRound(reference, (r) => r.cpuUsPerRequest, round)))
      summary.ratioToNginx[c] = median(roundRatios(byRound(runs, (r) => r.requestsPerSecond, round), byRound(reference, (r) => r.requestsPerSecond, round)))
      summary.p99OverNginxMs[c] = median(roundDifferences(byRound(runs, (r) => r.latencyMs.p99, round), byRound(reference, (r) => r.latencyMs.p99, round)))
    }
    const stats = sseStats(s.id)
    if (stats !== undefined) {
      const runs = sse(s.id)
      const round = (r: SseRun): number => r.round
      summary.sse = {
        ...stats,
        firstEventOverNginxMs: median(roundDifferences(byRound(runs, (r) => r.firstEventMs, round), byRound(nginxSse, (r) => r.firstEventMs, round))),
        eventDelayOverNginxMs: median(roundDifferences(byRound(runs, streamDelay, round), byRound(nginxSse, streamDelay, round)))
      }
    }
    summary.upload = results.transfers.find((t) => t.system === s.id && t.direction === 'upload')
    summary.download = results.transfers.find((t) => t.system === s.id && t.direction === 'download')
    const idle = results.idle.find((i) => i.system === s.id)
    if (idle !== undefined) summary.idleConnectionBytes = (idle.rssAfterBytes - idle.rssBeforeBytes) / idle.connections
    return summary
  })

  let workersRatio: number | undefined
  if (results.workers.length > 0) {
    const one = byRound(results.workers.filter((w) => w.workers === 1), (w) => w.requestsPerSecond, (w) => w.round)
    const two = byRound(results.workers.filter((w) => w.workers === 2), (w) => w.requestsPerSecond, (w) => w.round)
    workersRatio = median(roundRatios(two, one))
  }

  const foreign = results.throughput.map((r) => r.foreignCores)
  return {
    loadConnections,
    systems,
    direct: sseStats('direct'),
    foreignCores: { median: median(foreign), max: max(foreign) },
    generatorCoresMax: max(results.throughput.map((r) => r.generatorCores)),
    workersRatio
  }
}

export type TargetStatus = 'met' | 'not met' | 'not measured'

export interface Target {
  name: string
  target: string
  measured: string
  status: TargetStatus
}

export const MB = 2 ** 20
/** "Not growing with size": the peak of the second half at most this much above the first half's. */
export const LATE_GROWTH_LIMIT_BYTES = 8 * MB

/** Peak RSS in the second half of a transfer minus the peak in the first half. */
export function lateGrowth (t: TransferRun): number {
  const [a = NaN, b = NaN, c = NaN, d = NaN] = t.quarterMaxRssBytes
  return Math.max(c, d) - Math.max(a, b)
}

const signedMs = (v: number): string => `${v >= 0 ? '+' : ''}${v.toFixed(2)} ms`
const mb = (v: number): string => `${(v / MB).toFixed(1)} MB`

function judge (value: number | undefined, ok: (v: number) => boolean, show: (v: number) => string): { measured: string, status: TargetStatus } {
  if (value === undefined || !Number.isFinite(value)) return { measured: '—', status: 'not measured' }
  return { measured: show(value), status: ok(value) ? 'met' : 'not met' }
}

/** The targets of issue 6, judged for the relay (production configuration, one process). */
export function evaluateTargets (summary: Summary, results: Results): Target[] {
  const relay = summary.systems.find((s) => s.id === 'relay')
  const c = summary.loadConnections
  const targets: Target[] = []
  const add = (name: string, target: string, j: { measured: string, status: TargetStatus }): void => { targets.push({ name, target, ...j }) }

  add(`throughput at ${c} connections, share of nginx's (median of per-round ratios)`, '≥ 0.25×',
    judge(relay?.ratioToNginx[c], (v) => v >= 0.25, (v) => `${v.toFixed(3)}×`))
  add(`CPU per request at ${c} connections`, '≤ 85 µs',
    judge(relay?.cpuUsPerRequest[c], (v) => v <= 85, (v) => `${v.toFixed(1)} µs`))
  add('p99 latency over nginx\'s at 10 connections', '≤ 2 ms',
    judge(relay?.p99OverNginxMs[10], (v) => v <= 2, signedMs))
  add('p99 latency over nginx\'s at 1 connection', '≤ 0.5 ms',
    judge(relay?.p99OverNginxMs[1], (v) => v <= 0.5, signedMs))
  add('SSE first event, later than through nginx by', '≤ 1 ms',
    judge(relay?.sse?.firstEventOverNginxMs, (v) => v <= 1, signedMs))
  add('SSE per-event delay, over nginx\'s', '≤ 0.3 ms',
    judge(relay?.sse?.eventDelayOverNginxMs, (v) => v <= 0.3, signedMs))
  const relayRecord = results.systems.find((s) => s.id === 'relay')
  add('idle RSS per worker process', '≤ 80 MB',
    judge(relayRecord === undefined ? undefined : relayRecord.idleRssBytes / Math.max(1, relayRecord.processes), (v) => v <= 80 * MB, mb))
  add('memory per idle keep-alive connection', '≤ 12 KB',
    judge(relay?.idleConnectionBytes, (v) => v <= 12 * 1024, (v) => `${(v / 1024).toFixed(1)} KB`))
  for (const direction of ['upload', 'download'] as const) {
    const t = relay?.[direction]
    const late = t === undefined ? undefined : lateGrowth(t)
    const peakOk = t !== undefined && t.peakGrowthBytes <= 40 * MB
    const lateOk = late !== undefined && late <= LATE_GROWTH_LIMIT_BYTES
    add(`RSS growth streaming ${t === undefined ? '1 GB' : size(t.bytes)} ${direction === 'upload' ? 'up' : 'down'}, and not growing with size`,
      `≤ 40 MB; 2nd half's peak − 1st half's ≤ ${mb(LATE_GROWTH_LIMIT_BYTES)}`,
      t === undefined || late === undefined || !Number.isFinite(late)
        ? { measured: '—', status: 'not measured' }
        : { measured: `${mb(t.peakGrowthBytes)} peak; ${late >= 0 ? '+' : ''}${mb(late)} 2nd half over 1st`, status: peakOk && lateOk ? 'met' : 'not met' })
  }
  const workers = 'RELAY_WORKERS=2 throughput over one worker\'s'
  if (results.workersSkipped === undefined && summary.workersRatio !== undefined) {
    add(workers, '≥ 1.7×', judge(summary.workersRatio, (v) => v >= 1.7, (v) => `${v.toFixed(2)}×`))
  } else {
    const shown = summary.workersRatio === undefined || !Number.isFinite(summary.workersRatio) ? '' : ` (${summary.workersRatio.toFixed(2)}× with the CPUs shared)`
    targets.push({ name: workers, target: '≥ 1.7×', measured: `${results.workersSkipped ?? 'not run'}${shown}`, status: 'not measured' })
  }
  return targets
}

export function size (bytes: number): string {
  if (bytes % 2 ** 30 === 0) return `${bytes / 2 ** 30} GiB`
  if (bytes % 2 ** 20 === 0) return `${bytes / 2 ** 20} MiB`
  return `${bytes} bytes`
}
