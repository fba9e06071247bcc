// `npm run bench -- [options]` and the BENCH_* environment variables. Pure: parsing only.
import { positiveInt, positiveInts, positiveNumber } from './flags.js'
import { SYSTEM_IDS, type SystemId } from './systems.js'

export const SCENARIOS = ['throughput', 'sse', 'transfer', 'idle', 'streams', 'workers'] as const
export type Scenario = typeof SCENARIOS[number]

export interface BenchOptions {
  systems: SystemId[]
  scenarios: Scenario[]
  /** Alternating rounds of the wrk runs and of the SSE streams */
  rounds: number
  /** Seconds per wrk run at the highest connection count (the throughput and CPU figures) */
  durationSeconds: number
  /** Seconds per wrk run at the lower connection counts (latency only): half as long, at least 1 */
  latencyDurationSeconds: number
  connections: number[]
  /** Bytes per upload and per download */
  transferBytes: number
  idleConnections: number
  sseStreamsPerRound: number
  sseEvents: number
  sseIntervalMs: number
  /** Concurrent token streams per streaming run */
  streamCounts: number[]
  /** Events per stream in the measured window (all streams open) */
  streamEvents: number
  /** Events per second per stream */
  streamRate: number
  /** Node.js for the relay and the Node.js reference rows: 'node24' (the image's), 'system', or a path */
  node: string
  /** Where RESULTS.md, latency.svg and results.json go */
  outDir: string
  /** A 1-minute load average at or above this marks the run noisy */
  maxLoad: number
  /** Wait up to this many seconds for the load to fall below maxLoad before starting */
  waitQuietSeconds: number
  pin: boolean
  keepTemp: boolean
  quick: boolean
  help: boolean
}

export const USAGE = `npm run bench -- [options]          (or: npx tsx bench/run.ts [options] after npm run build)

  --quick                  1 round of 1 s runs, 2 SSE streams, 256 MiB transfers, shorter token
                           streams (a smoke test, ~2 min)
  --systems=a,b            of ${SYSTEM_IDS.join(', ')} (default: all; haproxy and caddy only when
                           installed; nginx always runs: it is the reference; caddy and tcp-pipe
                           run in the streams scenario only, fastify-stock not in it)   env BENCH_SYSTEMS
  --scenarios=a,b          of ${SCENARIOS.join(', ')} (default: all but workers, which
                           needs >= 4 cores and runs by default when there are)   env BENCH_SCENARIOS
  --rounds=N               alternating rounds (default 3)                    env BENCH_ROUNDS
  --duration=S             whole seconds per wrk run at the highest connection count (default 2;
                           the lower counts run half as long, at least 1 s)  env BENCH_DURATION
  --connections=1,10,50    wrk connection counts (default 1,10,50)
  --transfer-bytes=SIZE    per upload and download, e.g. 1G, 256M (default 1G = 1 GiB)
  --idle-connections=N     idle keep-alive connections to open (default 1000)
  --sse-streams=N          SSE streams per system per round (default 3)
  --sse-events=N           events per stream (default 20), --sse-interval=MS (default 10)
  --stream-counts=100,500,1000  concurrent token streams per streaming run (quick: 100,500)
  --stream-events=N        events per stream while all are open: the measured window (default 100,
                           quick 40), --stream-rate=N events per second per stream (default 20)
  --node=node24|system|PATH  Node.js for the relay and the Node.js rows (default node24, the image's,
                           via scripts/node24)                               env BENCH_NODE
  --out=DIR                where RESULTS.md, the plots, results.json go (default bench/)  env BENCH_OUT
  --max-load=L             1-minute load average that marks the run noisy (default 0.5)
  --wait-quiet[=S]         wait up to S seconds (default 300) for the load to drop below --max-load
  --no-pin                 don't pin with taskset
  --keep-temp              keep the temporary folder (configs, logs) and print its path
  --help
`

const SIZE = /^(\d+(?:\.\d+)?)\s*([kmgt]?)(i?b)?$/i

/** "1G", "256M", "64KiB", "1048576" → bytes (binary units). */
export function parseSize (text: string): number {
  const m = SIZE.exec(text.trim())
  if (m === null) throw new Error(`not a size: ${JSON.stringify(text)} (e.g. 1G, 256M, 1048576)`)
  const unit = { '': 1, k: 2 ** 10, m: 2 ** 20, g: 2 ** 30, t: 2 ** 40 }[(m[2] ?? '').toLowerCase() as '' | 'k' | 'm' | 'g' | 't']
  const bytes = Math.round(Number(m[1]) * unit)
  if (!Number.isSafeInteger(bytes) || bytes <= 0) throw new Error(`not a positive size: ${JSON.stringify(text)}`)
  return bytes
}

function list<T extends string> (name: string, text: string, allowed: readonly T[]): T[] {
  const items = text.split(',').map((s) => s.trim()).filter((s) => s !== '')
  const wrong = items.filter((s) => !(allowed as readonly string[]).includes(s))
  if (wrong.length > 0 || items.length === 0) throw new Error(`${name}: unknown ${wrong.join(', ') || '(empty)'}; choose from ${allowed.join(', ')}`)
  return [...new Set(items)] as T[]
}

export interface Environment {
  env: Record<string, string | undefined>
  /** CPUs of the machine (decides whether the workers scenario runs by default) */
  cores: number
  /** Systems whose program is installed (haproxy is optional) */
  installed: (id: SystemId) => boolean
}

export function parseOptions (argv: readonly string[], { env, cores, installed }: Environment): BenchOptions {
  const given = new Map<string, string>()
  for (const arg of argv) {
    const m = /^--([a-z-]+)(?:=(.*))?$/.exec(arg)
    if (m === null) throw new Error(`unexpected argument ${JSON.stringify(arg)}\n\n${USAGE}`)
    given.set(m[1] as string, m[2] ?? '')
  }
  const known = new Set(['quick', 'systems', 'scenarios', 'rounds', 'duration', 'connections', 'transfer-bytes', 'idle-connections',
    'sse-streams', 'sse-events', 'sse-interval', 'stream-counts', 'stream-events', 'stream-rate', 'node', 'out', 'max-load', 'wait-quiet', 'no-pin', 'keep-temp', 'help'])
  for (const name of given.keys()) if (!known.has(name)) throw new Error(`unknown option --${name}\n\n${USAGE}`)
  const value = (name: string, envName?: string): string | undefined => {
    const v = given.get(name)
    if (v !== undefined && v !== '') return v
    return envName === undefined ? undefined : (env[envName] === '' ? undefined : env[envName])
  }
  const quick = given.has('quick') || env.BENCH_QUICK === '1'

  let systems: SystemId[]
  const systemsText = value('systems', 'BENCH_SYSTEMS')
  if (systemsText === undefined) {
    systems = SYSTEM_IDS.filter((id) => installed(id))
  } else {
    systems = list('--systems', systemsText, SYSTEM_IDS)
    const missing = systems.filter((id) => !installed(id))
    if (missing.length > 0) throw new Error(`--systems: ${missing.join(', ')} not installed`)
  }
  // nginx is the reference every ratio is taken against: always measured, always first.
  systems = ['nginx', ...systems.filter((id) => id !== 'nginx')]

  const scenariosText = value('scenarios', 'BENCH_SCENARIOS')
  const scenarios: Scenario[] = scenariosText === undefined
    ? SCENARIOS.filter((s) => s !== 'workers' || cores >= 4)
    : list('--scenarios', scenariosText, SCENARIOS)

  const connectionsText = value('connections')
  const connections = connectionsText === undefined
    ? [1, 10, 50]
    : positiveInts('--connections', connectionsText).sort((a, b) => a - b)

  const rounds = value('rounds', 'BENCH_ROUNDS')
  const duration = value('duration', 'BENCH_DURATION')
  const transfer = value('transfer-bytes')
  const idle = value('idle-connections')
  const streams = value('sse-streams')
  const events = value('sse-events')
  const interval = value('sse-interval')
  const streamCounts = value('stream-counts')
  const streamEvents = value('stream-events')
  const streamRate = value('stream-rate')
  const maxLoad = value('max-load')
  const wait = given.get('wait-quiet')

  const durationSeconds = duration === undefined ? (quick ? 1 : 2) : positiveInt('--duration', duration)
  return {
    systems,
    scenarios,
    rounds: rounds === undefined ? (quick ? 1 : 3) : positiveInt('--rounds', rounds),
    durationSeconds,
    latencyDurationSeconds: Math.max(1, Math.floor(durationSeconds / 2)),
    connections: [...new Set(connections)],
    transferBytes: transfer === undefined ? (quick ? 256 * 2 ** 20 : 2 ** 30) : parseSize(transfer),
    idleConnections: idle === undefined ? 1000 : positiveInt('--idle-connections', idle),
    sseStreamsPerRound: streams === undefined ? (quick ? 2 : 3) : positiveInt('--sse-streams', streams),
    sseEvents: events === undefined ? 20 : Math.max(2, positiveInt('--sse-events', events)),
    sseIntervalMs: interval === undefined ? 10 : positiveInt('--sse-interval', interval),
    streamCounts: streamCounts === undefined ? (quick ? [100, 500] : [100, 500, 1000]) : [...new Set(positiveInts('--stream-counts', streamCounts))].sort((a, b) => a - b),
    streamEvents: streamEvents === undefined ? (quick ? 40 : 100) : positiveInt('--stream-events', streamEvents),
    streamRate: streamRate === undefined ? 20 : positiveNumber('--stream-rate', streamRate),
    node: value('node', 'BENCH_NODE') ?? 'node24',
    outDir: value('out', 'BENCH_OUT') ?? 'bench',
    maxLoad: maxLoad === undefined ? 0.5 : positiveNumber('--max-load', maxLoad),
    waitQuietSeconds: wait === undefined ? 0 : wait === '' ? 300 : positiveNumber('--wait-quiet', wait),
    pin: !given.has('no-pin'),
    keepTemp: given.has('keep-temp'),
    quick,
    help: given.has('help')
  }
}
