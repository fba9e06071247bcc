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
`

export function parsePiOptions (argv: readonly string[]): PiOptions {
  const o: PiOptions = { image: undefined, workers: [1, 2, 3], connections: [1, 10, 50], duration: 8, rounds: 3, cpus: '0.5', memory: '512m', out: 'bench', help: false }
  for (const arg of argv) {
    if (arg === '--help' || arg === '-h') { o.help = true; continue }
    const match = /^--([a-z]+)=(.*)$/.exec(arg)
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

const MB = 1024 * 1024
const ms = (us: number): string => (us / 1000).toFixed(us < 10_000 ? 2 : 1)

export function renderPiMarkdown (rows: readonly PiRow[], meta: { date: string, machine: string, image: string, commit: string, options: PiOptions, commands: string[] }): string {
  const best = bestWorkers(rows)
  const head = ['RELAY_WORKERS', ...rows[0]?.byConnections.flatMap((c) => [`req/s @${c.connections}`, `p50 / p99 ms @${c.connections}`, `throttled @${c.connections}`, `CPU µs/req @${c.connections}`]) ?? [], 'memory idle / peak', 'RSS idle / peak']
  const body = rows.map((row) => [
    row.workers === best ? `**${row.workers}** (best)` : String(row.workers),
    ...row.byConnections.flatMap((c) => [c.requestsPerSecond.toFixed(0), `${ms(c.p50Us)} / ${ms(c.p99Us)}`, `${(c.throttledShare * 100).toFixed(0)} %`, c.cpuUsPerRequest.toFixed(0)]),
    `${(row.idleWorkingSetBytes / MB).toFixed(0)} / ${(row.workingSetMaxBytes / MB).toFixed(0)} MB`,
    `${(row.idleRssBytes / MB).toFixed(0)} / ${(row.rssMaxBytes / MB).toFixed(0)} MB`
  ])
  const o = meta.options
  return [
    '# Pi-sized profile: the image under the chart\'s limits',
    '',
    `Written by \`npm run bench:pi\` on ${meta.date}. Machine: ${meta.machine}. Image: \`${meta.image}\` (commit ${meta.commit}).`,
    '',
    `Each container: \`podman run --cpus ${o.cpus} --memory ${o.memory}\` (the chart's default limits), production configuration (INFO logging to stdout, metrics on), host network; the upstream is nginx \`return 200\` on loopback, wrk (1 thread) pinned to the last CPU. ${o.rounds} rounds of ${o.duration} s per connection count, the worker counts' order rotating; medians shown. "throttled" is the share of the kernel's 100 ms CFS periods in which the container had used up its quota and was stopped until the next one. "memory" is the container's cgroup working set (usage minus inactive page cache: what the memory limit and the OOM killer count, node's shared code once); "RSS" sums the processes' resident sets (shared pages once per process).`,
    '',
    `| ${head.join(' | ')} |`,
    `|${head.map(() => '---').join('|')}|`,
    ...body.map((cells) => `| ${cells.join(' | ')} |`),
    '',
    `Best under these limits: **RELAY_WORKERS=${best}** (highest throughput at ${rows[0]?.byConnections.at(-1)?.connections ?? '?'} connections; within ${TIE_SHARE * 100} %, the lower p99 at ${rows[0]?.byConnections[0]?.connections ?? '?'} connections, then fewer workers).`,
    '',
    '## Commands',
    '',
    '```sh',
    ...meta.commands,
    '```',
    ''
  ].join('\n')
}
