// The Pi-sized profile (`npm run bench:pi`): the pure parts — options, the summary over rounds, the
// choice of a worker count and the report — apart from the podman and wrk wiring in bench/pi.ts.
import { positiveInt, positiveInts, positiveNumber } from './flags.js'
import { median, max } from './stats.js'

export interface PiOptions {
  /** Image to measure; undefined = build it from the Containerfile first */
  image: string | undefined
  workers: number[]
  connections: number[]
  /** Seconds per wrk run */
  duration: number
  rounds: number
  /** podman's --cpus and --memory: the chart's default limits */
  cpus: string
  memory: string
  out: string
  /** What to run: the wrk profile ('requests') and the search for the most concurrent streams */
  scenarios: Array<'requests' | 'streams'>
  /** The stream search: the first count (doubled while it passes, then bisected), the highest, the criterion */
  streamStart: number
  streamMax: number
  streamEvents: number
  streamRate: number
  streamP99Ms: number
  help: boolean
}

export const PI_USAGE = `npm run bench:pi -- [options]

The container image under the chart's default limits (podman run --cpus 0.5 --memory 512m), with
RELAY_WORKERS 1, 2 and 3: throughput, p50/p99 and RSS. Needs podman (+ runc), nginx and wrk.

  --image=<ref>          measure this image instead of building localhost/tokenplace-relay:bench
  --workers=1,2,3        RELAY_WORKERS values
  --connections=1,10,50  wrk connection counts
  --duration=8           seconds per wrk run
  --rounds=3             alternating rounds (the worker counts' order rotates)
  --cpus=0.5 --memory=512m   the container's limits
  --out=bench            where PI.md and pi.json go
  --scenarios=requests,streams   the wrk profile, and the search for the most concurrent streams
  --stream-start=100     first stream count: doubled while it passes, then bisected to within 10 %
  --stream-max=3200      highest stream count tried
  --stream-events=100    events per stream while all are open, --stream-rate=20 events/s per stream
  --stream-p99-ms=50     a count passes with p99 added delay at most this and no event lost
`

export function parsePiOptions (argv: readonly string[]): PiOptions {
  const o: PiOptions = { image: undefined, workers: [1, 2, 3], connections: [1, 10, 50], duration: 8, rounds: 3, cpus: '0.5', memory: '512m', out: 'bench', scenarios: ['requests', 'streams'], streamStart: 100, streamMax: 3200, streamEvents: 100, streamRate: 20, streamP99Ms: 50, help: false }
  for (const arg of argv) {
    if (arg === '--help' || arg === '-h') { o.help = true; continue }
    const match = /^--([a-z0-9-]+)=(.*)$/.exec(arg)
    if (match === null) throw new Error(`unknown argument "${arg}" (see --help)`)
    const [, name, value] = match as unknown as [string, string, string]
    switch (name) {
      case 'image': o.image = value; break
      case 'workers': o.workers = positiveInts('--workers', value); break
      case 'connections': o.connections = positiveInts('--connections', value); break
      case 'duration': o.duration = positiveInt('--duration', value); break
      case 'rounds': o.rounds = positiveInt('--rounds', value); break
      case 'cpus': o.cpus = String(positiveNumber('--cpus', value)); break
      case 'memory':
        if (!/^\d+[kmg]?$/i.test(value)) throw new Error(`--memory expects a size such as 512m, got "${value}"`)
        o.memory = value
        break
      case 'out': o.out = value; break
      case 'scenarios': {
        const list = value.split(',').map((v) => v.trim())
        if (list.length === 0 || !list.every((v) => v === 'requests' || v === 'streams')) throw new Error(`--scenarios expects requests, streams or both, got "${value}"`)
        o.scenarios = [...new Set(list)] as PiOptions['scenarios']
        break
      }
      case 'stream-start': o.streamStart = positiveInt('--stream-start', value); break
      case 'stream-max': o.streamMax = positiveInt('--stream-max', value); break
      case 'stream-events': o.streamEvents = positiveInt('--stream-events', value); break
      case 'stream-rate': o.streamRate = positiveNumber('--stream-rate', value); break
      case 'stream-p99-ms': o.streamP99Ms = positiveNumber('--stream-p99-ms', value); break
      default: throw new Error(`unknown option --${name} (see --help)`)
    }
  }
  return o
}

/** One wrk run against one container. */
export interface PiRun {
  workers: number
  connections: number
  round: number
  requestsPerSecond: number
  p50Us: number
  p99Us: number
  /** Highest RSS summed over the container's processes while wrk ran */
  rssMaxBytes: number
  /** Highest working set of the container's memory cgroup (what its limit and the OOM killer see) */
  workingSetMaxBytes: number
  /** Share of the CFS periods in which the container was throttled (its quota used up) */
  throttledShare: number
  /** Container CPU time per request, µs */
  cpuUsPerRequest: number
}

export interface PiRow {
  workers: number
  idleRssBytes: number
  rssMaxBytes: number
  idleWorkingSetBytes: number
  workingSetMaxBytes: number
  byConnections: Array<{ connections: number, requestsPerSecond: number, p50Us: number, p99Us: number, throttledShare: number, cpuUsPerRequest: number }>
}

/** Medians over the rounds per worker count and connection count; the peak RSS over all of them. */
export function summarisePi (runs: readonly PiRun[], idle: { rss: ReadonlyMap<number, number>, workingSet: ReadonlyMap<number, number> }, options: Pick<PiOptions, 'workers' | 'connections'>): PiRow[] {
  return options.workers.map((workers) => {
    const mine = runs.filter((r) => r.workers === workers)
    return {
      workers,
      idleRssBytes: idle.rss.get(workers) ?? 0,
      rssMaxBytes: max(mine.map((r) => r.rssMaxBytes)),
      idleWorkingSetBytes: idle.workingSet.get(workers) ?? 0,
      workingSetMaxBytes: max(mine.map((r) => r.workingSetMaxBytes)),
      byConnections: options.connections.map((connections) => {
        const at = mine.filter((r) => r.connections === connections)
        return {
          connections,
          requestsPerSecond: median(at.map((r) => r.requestsPerSecond)),
          p50Us: median(at.map((r) => r.p50Us)),
          p99Us: median(at.map((r) => r.p99Us)),
          throttledShare: median(at.map((r) => r.throttledShare)),
          cpuUsPerRequest: median(at.map((r) => r.cpuUsPerRequest))
        }
      })
    }
  })
}

/** Throughputs within this share of the best count as a tie (the runs' own spread is about that). */
export const TIE_SHARE = 0.05

/**
 * The worker count that serves best: the highest throughput at the largest connection count; among
 * counts within TIE_SHARE of it, the lowest p99 at the smallest connection count, then the fewest
 * workers (less memory, fewer processes to drain).
 */
export function bestWorkers (rows: readonly PiRow[]): number {
  const last = (row: PiRow): number => row.byConnections[row.byConnections.length - 1]?.requestsPerSecond ?? 0
  const firstP99 = (row: PiRow): number => row.byConnections[0]?.p99Us ?? Infinity
  const top = Math.max(...rows.map(last))
  const tied = rows.filter((row) => last(row) >= top * (1 - TIE_SHARE))
  tied.sort((a, b) => firstP99(a) - firstP99(b) || a.workers - b.workers)
  const best = tied[0]
  if (best === undefined) throw new Error('no rows to choose from')
  return best.workers
}

/** One step of the stream search: `streams` concurrent streams through one container. */
export interface PiStreamStep {
  workers: number
  streams: number
  passed: boolean
  /** Why it did not pass: the p99, the losses, or the error that ended the run */
  why?: string
  p50Ms?: number
  p99Ms?: number
  lost?: number
  /** Container CPU (its cgroup) in the window ÷ the events relayed in it, µs */
  cpuUsPerEvent?: number
  throttledShare?: number
  workingSetMaxBytes?: number
  openSeconds?: number
  /** CPU of the upstream and the client in the window, in cores */
  generatorCores?: number
}

/** Whether a step's numbers carry its streams: p99 added delay within the limit and nothing lost, reordered or cut. */
export function judgeStreamStep (m: { p99Ms: number, lost: number, outOfOrder: number, cut: number }, p99LimitMs: number): { passed: boolean, why?: string } {
  const why: string[] = []
  if (!(m.p99Ms <= p99LimitMs)) why.push(`p99 ${m.p99Ms.toFixed(1)} ms > ${p99LimitMs} ms`)
  if (m.lost + m.outOfOrder + m.cut > 0) why.push(`${m.lost} events lost, ${m.outOfOrder} reordered, ${m.cut} streams cut`)
  return why.length === 0 ? { passed: true } : { passed: false, why: why.join('; ') }
}

/**
 * The next stream count to try, or undefined when the search is over: from `start`, doubled while
 * every count passes (up to `max`), then halfway between the most that passed and the fewest that
 * failed, in steps of 25, until they are within 10 % (or 25 streams) of each other.
 */
export function nextStreamCount (steps: ReadonlyArray<{ streams: number, passed: boolean }>, o: { start: number, max: number }): number | undefined {
  if (steps.length === 0) return Math.min(o.start, o.max)
  const best = Math.max(0, ...steps.filter((s) => s.passed).map((s) => s.streams))
  const failed = Math.min(Infinity, ...steps.filter((s) => !s.passed).map((s) => s.streams))
  if (failed === Infinity) return best >= o.max ? undefined : Math.min(o.max, best * 2)
  if (failed - best <= Math.max(25, best * 0.1)) return undefined
  const mid = Math.round((best + failed) / 2 / 25) * 25
  return mid > best && mid < failed ? mid : undefined
}

/** The most streams each worker count carried, and the first count that failed above it. */
export function streamCapacity (steps: readonly PiStreamStep[], workers: readonly number[]): Array<{ workers: number, carried: PiStreamStep | undefined, failed: PiStreamStep | undefined }> {
  return workers.map((w) => {
    const mine = steps.filter((s) => s.workers === w)
    const carried = mine.filter((s) => s.passed).sort((a, b) => b.streams - a.streams)[0]
    const failed = mine.filter((s) => !s.passed && s.streams > (carried?.streams ?? 0)).sort((a, b) => a.streams - b.streams)[0]
    return { workers: w, carried, failed }
  })
}

/** Issue 14's target for the Pi profile. */
export const PI_STREAM_TARGET = 800

function streamSection (steps: readonly PiStreamStep[], o: PiOptions): string[] {
  const capacity = streamCapacity(steps, o.workers)
  const most = Math.max(0, ...capacity.map((c) => c.carried?.streams ?? 0))
  const best = capacity.find((c) => (c.carried?.streams ?? 0) === most)
  const num = (v: number | undefined, digits = 1): string => v === undefined || !Number.isFinite(v) ? '—' : v.toFixed(digits)
  const at = (s: PiStreamStep | undefined): string[] => [num(s?.p50Ms, 2), num(s?.p99Ms), num(s?.cpuUsPerEvent, 0), s?.throttledShare === undefined ? '—' : `${(s.throttledShare * 100).toFixed(0)} %`, s?.workingSetMaxBytes === undefined ? '—' : `${(s.workingSetMaxBytes / MB).toFixed(0)} MB`]
  return [
    '## Streams: the most concurrent token streams one pod carries',
    '',
    `Concurrent SSE streams through the container, each on a connection of its own, the upstream (\`bench/servers/upstream.ts\`, node) writing a ~60-byte event to each ${o.streamRate} times a second; once all are open each goes on for ${o.streamEvents} events (the window). A count is carried when every stream opened, no event was lost, reordered or cut off, and the p99 added delay (receipt − the upstream's send stamp, one clock) of the window's events was at most ${o.streamP99Ms} ms. The search starts at ${o.streamStart} streams, doubles while a count is carried (up to ${o.streamMax}), then bisects to within 10 %. The upstream and the client run on the load generator's CPU; CPU per event is the container's cgroup CPU in the window ÷ the events relayed.`,
    '',
    '| RELAY_WORKERS | most streams carried | p50 / p99 added delay, ms | CPU µs/event | throttled | memory peak | first count not carried |',
    '|---|---|---|---|---|---|---|',
    ...capacity.map((c) => {
      const [p50, p99, cpu, throttled, memory] = at(c.carried)
      return `| ${c === best ? `**${c.workers}**` : c.workers} | ${c.carried?.streams ?? 0} | ${p50} / ${p99} | ${cpu} | ${throttled} | ${memory} | ${c.failed === undefined ? `none up to ${o.streamMax}` : `${c.failed.streams}: ${c.failed.why ?? ''}`} |`
    }),
    '',
    `**Target (issue 14): ≥ ${PI_STREAM_TARGET} concurrent 20-event/s streams in one 500m / 512Mi pod: ${most}${best === undefined ? '' : ` (RELAY_WORKERS=${best.workers})`} — ${most >= PI_STREAM_TARGET ? '✅ met' : best?.failed === undefined ? `⚪ not measured: the search stopped at --stream-max=${o.streamMax}` : '❌ not met'}.**${o.streamRate === 20 && o.cpus === '0.5' && o.memory === '512m' ? '' : ' (This run did not use the target\'s 20 events/s and 500m / 512Mi.)'}`,
    '',
    'Every step, in the order run:',
    '',
    '| RELAY_WORKERS | streams | carried | p50 / p99 added delay, ms | lost | CPU µs/event | throttled | memory peak | opened in, s | generator cores |',
    '|---|---|---|---|---|---|---|---|---|---|',
    ...steps.map((s) => {
      const [p50, p99, cpu, throttled, memory] = at(s)
      return `| ${s.workers} | ${s.streams} | ${s.passed ? 'yes' : `no: ${s.why ?? ''}`} | ${p50} / ${p99} | ${s.lost ?? '—'} | ${cpu} | ${throttled} | ${memory} | ${num(s.openSeconds)} | ${num(s.generatorCores, 2)} |`
    }),
    ''
  ]
}

const MB = 1024 * 1024
const ms = (us: number): string => (us / 1000).toFixed(us < 10_000 ? 2 : 1)

export function renderPiMarkdown (rows: readonly PiRow[], meta: { date: string, machine: string, image: string, commit: string, options: PiOptions, commands: string[], streamSteps?: readonly PiStreamStep[] }): string {
  const o = meta.options
  const L = [
    '# Pi-sized profile: the image under the chart\'s limits',
    '',
    `Written by \`npm run bench:pi\` on ${meta.date}. Machine: ${meta.machine}. Image: \`${meta.image}\` (commit ${meta.commit}).`,
    '',
    `Each container: \`podman run --cpus ${o.cpus} --memory ${o.memory}\` (the chart's default limits), on every CPU but the last (the load generator's), production configuration (INFO logging to stdout, metrics on, overload limits on but not binding), host network.`,
    ''
  ]
  if (rows.length > 0) {
    const best = bestWorkers(rows)
    const head = ['RELAY_WORKERS', ...rows[0]?.byConnections.flatMap((c) => [`req/s @${c.connections}`, `p50 / p99 ms @${c.connections}`, `throttled @${c.connections}`, `CPU µs/req @${c.connections}`]) ?? [], 'memory idle / peak', 'RSS idle / peak']
    const body = rows.map((row) => [
      row.workers === best ? `**${row.workers}** (best)` : String(row.workers),
      ...row.byConnections.flatMap((c) => [c.requestsPerSecond.toFixed(0), `${ms(c.p50Us)} / ${ms(c.p99Us)}`, `${(c.throttledShare * 100).toFixed(0)} %`, c.cpuUsPerRequest.toFixed(0)]),
      `${(row.idleWorkingSetBytes / MB).toFixed(0)} / ${(row.workingSetMaxBytes / MB).toFixed(0)} MB`,
      `${(row.idleRssBytes / MB).toFixed(0)} / ${(row.rssMaxBytes / MB).toFixed(0)} MB`
    ])
    L.push(
      '## Small requests',
      '',
      `The upstream is nginx \`return 200\` on loopback, wrk (1 thread) pinned to the last CPU. ${o.rounds} rounds of ${o.duration} s per connection count, the worker counts' order rotating; medians shown. "throttled" is the share of the kernel's 100 ms CFS periods in which the container had used up its quota and was stopped until the next one. "memory" is the container's cgroup working set (usage minus inactive page cache: what the memory limit and the OOM killer count, node's shared code once); "RSS" sums the processes' resident sets (shared pages once per process).`,
      '',
      `| ${head.join(' | ')} |`,
      `|${head.map(() => '---').join('|')}|`,
      ...body.map((cells) => `| ${cells.join(' | ')} |`),
      '',
      `Best under these limits: **RELAY_WORKERS=${best}** (highest throughput at ${rows[0]?.byConnections.at(-1)?.connections ?? '?'} connections; within ${TIE_SHARE * 100} %, the lower p99 at ${rows[0]?.byConnections[0]?.connections ?? '?'} connections, then fewer workers).`,
      ''
    )
  }
  if (meta.streamSteps !== undefined && meta.streamSteps.length > 0) L.push(...streamSection(meta.streamSteps, o))
  L.push('## Commands', '', '```sh', ...meta.commands, '```', '')
  return L.join('\n')
}
