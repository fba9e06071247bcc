// What a run records, how it is summarised (medians over rounds, ratios and differences to nginx
// within each round) and how the issue's targets are judged. Pure: no I/O.
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

/** One streaming run: `streams` concurrent token streams through one system (or none: 'direct'). */
export interface StreamRun {
  system: SystemId | 'direct'
  label: string
  round: number
  streams: number
  /** Seconds from the first connection to every stream open */
  openSeconds: number
  /** Events received while every stream was open (the window), and the window's length */
  windowEvents: number
  windowSeconds: number
  /** The system's CPU (every thread of its processes) in the window ÷ windowEvents, µs; absent without a proxy */
  cpuUsPerEvent?: number
  /** Added delay (receipt − the upstream's send stamp) of the window's events, ms */
  delayMs: { p50: number, p99: number, max: number }
  /** Events the upstream sent and the client received over the whole run */
  sent: number
  received: number
  /** Events streams cut short would have carried up to the run's end (the upstream's count) */
  unsent: number
  outOfOrder: number
  /** Streams that ended early */
  cut: number
  /** RSS of this round's system before its first stream (after the warm-up), and the median sampled in the window */
  idleRssBytes?: number
  openRssBytes?: number
  /** CPU of the upstream and the harness (the client) in the window, in cores */
  generatorCores: number
  foreignCores: number
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
  streams: StreamRun[]
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

  const foreign = [...results.throughput, ...results.streams].map((r) => r.foreignCores)
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

/** Events lost in a run: sent by the upstream and never received, and those a stream cut short never carried. */
export const lostEvents = (r: StreamRun): number => Math.max(0, r.sent - r.received) + r.unsent

/** (RSS with every stream open − RSS before any) ÷ streams, bytes; undefined without a proxy. */
export function rssPerStream (r: StreamRun): number | undefined {
  return r.idleRssBytes === undefined || r.openRssBytes === undefined ? undefined : (r.openRssBytes - r.idleRssBytes) / r.streams
}

/** One system at one stream count: medians over rounds; ratios and differences within each round. */
export interface StreamRow {
  system: SystemId | 'direct'
  label: string
  streams: number
  rounds: number
  cpuUsPerEvent: number
  cpuRatioToNginx: number
  cpuRatioToCaddy: number
  p50Ms: number
  p99Ms: number
  /** Median over rounds of (this p99 − Caddy's p99 in the same round) */
  p99OverCaddyMs: number
  /** Summed over rounds */
  lost: number
  outOfOrder: number
  cut: number
  sent: number
  rssPerStreamBytes: number
  idleRssBytes: number
  openRssBytes: number
}

export function summariseStreams (runs: readonly StreamRun[]): StreamRow[] {
  const counts = [...new Set(runs.map((r) => r.streams))].sort((a, b) => a - b)
  const systems = [...new Set(runs.map((r) => r.system))]
  const perRound = (system: SystemId | 'direct', streams: number, pick: (r: StreamRun) => number | undefined): Map<number, number> =>
    new Map(runs.filter((r) => r.system === system && r.streams === streams).map((r) => [r.round, pick(r) ?? NaN]))
  const rows: StreamRow[] = []
  for (const streams of counts) {
    for (const system of systems) {
      const mine = runs.filter((r) => r.system === system && r.streams === streams)
      if (mine.length === 0) continue
      const cpu = perRound(system, streams, (r) => r.cpuUsPerEvent)
      const p99 = perRound(system, streams, (r) => r.delayMs.p99)
      const sum = (pick: (r: StreamRun) => number): number => mine.reduce((total, r) => total + pick(r), 0)
      rows.push({
        system,
        label: (mine[0] as StreamRun).label,
        streams,
        rounds: mine.length,
        cpuUsPerEvent: median([...cpu.values()]),
        cpuRatioToNginx: median(roundRatios(cpu, perRound('nginx', streams, (r) => r.cpuUsPerEvent))),
        cpuRatioToCaddy: median(roundRatios(cpu, perRound('caddy', streams, (r) => r.cpuUsPerEvent))),
        p50Ms: median(mine.map((r) => r.delayMs.p50)),
        p99Ms: median([...p99.values()]),
        p99OverCaddyMs: median(roundDifferences(p99, perRound('caddy', streams, (r) => r.delayMs.p99))),
        lost: sum(lostEvents),
        outOfOrder: sum((r) => r.outOfOrder),
        cut: sum((r) => r.cut),
        sent: sum((r) => r.sent),
        rssPerStreamBytes: median(mine.map((r) => rssPerStream(r) ?? NaN)),
        idleRssBytes: median(mine.map((r) => r.idleRssBytes ?? NaN)),
        openRssBytes: median(mine.map((r) => r.openRssBytes ?? NaN))
      })
    }
  }
  return rows
}

/** The stream count issue 14's targets name (500), or the nearest one run. */
export function referenceStreams (rows: readonly StreamRow[], wanted = 500): number | undefined {
  const counts = [...new Set(rows.map((r) => r.streams))]
  return counts.sort((a, b) => Math.abs(a - wanted) - Math.abs(b - wanted) || b - a)[0]
}

/** Issue 14's targets (items 3 and 4), judged for the relay in its production configuration. */
export function evaluateStreamTargets (rows: readonly StreamRow[], summary: Summary): Target[] {
  const n = referenceStreams(rows)
  const relay = rows.filter((r) => r.system === 'relay')
  const at = relay.find((r) => r.streams === n)
  const caddy = rows.find((r) => r.system === 'caddy' && r.streams === n)
  const others = (show: (r: StreamRow) => string): string => {
    const rest = relay.filter((r) => r.streams !== n).map((r) => `${r.streams}: ${show(r)}`)
    return rest.length === 0 ? '' : `; at ${rest.join(', ')}`
  }
  const targets: Target[] = []
  const add = (name: string, target: string, j: { measured: string, status: TargetStatus }): void => { targets.push({ name, target, ...j }) }
  add(`CPU per relayed event at ${n ?? '?'} streams, × Caddy's (median of per-round ratios)`, '≤ 1.1×',
    judge(at?.cpuRatioToCaddy, (v) => v <= 1.1, (v) => `${v.toFixed(2)}× (${at?.cpuUsPerEvent.toFixed(1)} µs; Caddy ${caddy?.cpuUsPerEvent.toFixed(1)} µs)${others((r) => `${r.cpuRatioToCaddy.toFixed(2)}×`)}`))
  add(`p99 added delay at ${n ?? '?'} streams, over Caddy's (median of per-round differences)`, '≤ +1 ms',
    judge(at?.p99OverCaddyMs, (v) => v <= 1, (v) => `${signedMs(v)} (${at?.p99Ms.toFixed(2)} ms; Caddy ${caddy?.p99Ms.toFixed(2)} ms)${others((r) => signedMs(r.p99OverCaddyMs))}`))
  add(`RSS per active stream at ${n ?? '?'} streams ((RSS with all open − idle) ÷ streams)`, '≤ 16 KB',
    judge(at?.rssPerStreamBytes, (v) => v <= 16 * 1024, (v) => `${(v / 1024).toFixed(1)} KB (${mb(at?.idleRssBytes ?? NaN)} idle, ${mb(at?.openRssBytes ?? NaN)} open)${others((r) => `${(r.rssPerStreamBytes / 1024).toFixed(1)} KB`)}`))
  const bad = rows.filter((r) => r.lost + r.outOfOrder + r.cut > 0)
  const sent = rows.reduce((total, r) => total + r.sent, 0)
  add('events lost, reordered or cut short, every system and stream count', '0',
    rows.length === 0
      ? { measured: '—', status: 'not measured' }
      : { measured: bad.length === 0 ? `0 of ${sent.toLocaleString('en-US')} sent` : bad.map((r) => `${r.system} at ${r.streams}: ${r.lost} lost, ${r.outOfOrder} reordered, ${r.cut} streams cut`).join('; '), status: bad.length === 0 ? 'met' : 'not met' })
  targets.push({ name: 'concurrent 20-event/s streams one 500m / 512Mi pod carries (p99 added delay ≤ 50 ms, none lost)', target: '≥ 800', measured: 'measured by `npm run bench:pi`: see bench/PI.md', status: 'not measured' })
  const relaySmall = summary.systems.find((s) => s.id === 'relay')
  const c = summary.loadConnections
  add(`small requests, every feature on (overload protection, metrics): throughput at ${c} connections, share of nginx's`, '≥ 0.25×',
    judge(relaySmall?.ratioToNginx[c], (v) => v >= 0.25, (v) => `${v.toFixed(3)}×`))
  return targets
}

export function size (bytes: number): string {
  if (bytes % 2 ** 30 === 0) return `${bytes / 2 ** 30} GiB`
  if (bytes % 2 ** 20 === 0) return `${bytes / 2 ** 20} MiB`
  return `${bytes} bytes`
}
