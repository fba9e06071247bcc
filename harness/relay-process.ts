// The built relay (dist/server.js) as a child process, started the way production starts it: the
// tests that need signals, workers or a real exit, the soak, and the benchmark all go through here.
import { fileURLToPath } from 'node:url'
import { LogCollector, type LogLine } from './log-lines.js'
import { groupAlive, killGroup, signalGroup, spawnGroup, type Exit, type GroupProcess } from './process-group.js'
import { waitFor } from './wait.js'

export const SERVER_JS = fileURLToPath(new URL('../dist/server.js', import.meta.url))

/** What each serving process logs once it listens, with its `port` (src/worker.ts). */
export const READY_MSG = 'relay ready'

/** How long a relay gets to log it: a cold start of two workers on a busy 2-core machine takes seconds. */
export const READY_TIMEOUT_MS = 15_000

const COVERAGE_PROBE = fileURLToPath(new URL('./coverage-probe.mjs', import.meta.url))
/**
 * c8 is collecting coverage (npm test): relays then load the coverage probe, and are asked to write
 * their coverage before their group is killed. A killed process writes none, and what only a spawned
 * relay runs (a cluster primary, the pod-wide limits) would count as never run.
 */
const COLLECTING_COVERAGE = process.env.NODE_V8_COVERAGE !== undefined

/**
 * The environment for a relay child: this process's, minus the relay settings and NODE_OPTIONS a
 * developer's shell may hold (the caller says what the relay gets; a loader in NODE_OPTIONS would
 * run inside the measured process), plus `env`.
 */
export function relayEnv (env: Record<string, string>): NodeJS.ProcessEnv {
  const inherited = Object.entries(process.env).filter(([name]) => !name.startsWith('RELAY_') && name !== 'UPSTREAM_URL' && name !== 'NODE_OPTIONS')
  return { ...Object.fromEntries(inherited), ...env }
}

/** The port of the first ready line among `lines`, if there is one. */
export function readyPort (lines: readonly LogLine[]): number | undefined {
  const ready = lines.find((line) => line.msg === READY_MSG)
  return ready === undefined ? undefined : Number(ready.port)
}

export interface RelayProcess {
  child: GroupProcess['child']
  url: string
  port: number
  logs: LogCollector
  stderr: () => string
  exited: Promise<Exit>
  /** Kills the process and its workers (its whole process group) if they still run. */
  stop(): Promise<void>
}

export interface SpawnOptions {
  /** Wait for this many ready lines (one per worker); 0 returns at once. */
  ready?: number
  /** Extra Node.js options, before the script (e.g. instrumentation loaded with --import). */
  nodeOptions?: string[]
}

/** Starts `node dist/server.js` on an ephemeral loopback port, one worker unless `env` says otherwise. */
export async function spawnRelay (env: Record<string, string>, options: SpawnOptions = {}): Promise<RelayProcess> {
  // NODE_OPTIONS, not an argument: cluster workers inherit it.
  const coverage: Record<string, string> = COLLECTING_COVERAGE ? { NODE_OPTIONS: `--import ${COVERAGE_PROBE}` } : {}
  const group = spawnGroup(process.execPath, [...(options.nodeOptions ?? []), SERVER_JS], {
    env: relayEnv({ ...coverage, RELAY_HOST: '127.0.0.1', RELAY_PORT: '0', RELAY_WORKERS: '1', ...env }),
    stdio: ['ignore', 'pipe', 'pipe']
  })
  const { child } = group
  const logs = new LogCollector()
  let stderr = ''
  child.stdout?.on('data', (chunk: Buffer) => logs.write(chunk))
  child.stderr?.on('data', (chunk: Buffer) => { stderr += chunk.toString() })
  // A group whose leader exited may still hold workers: kill the group even then.
  const stop = async (): Promise<void> => {
    if (COLLECTING_COVERAGE && groupAlive(group.pid)) {
      signalGroup(group.pid, 'SIGXFSZ')
      await waitFor(() => !groupAlive(group.pid), 2000, 'the relay to write its coverage').catch(() => {})
    }
    await killGroup(group)
  }

  const wanted = options.ready ?? 1
  if (wanted > 0) {
    try {
      await waitFor(() => {
        if (group.hasExited()) throw new Error(`relay exited with ${child.exitCode} before it was ready:\n${stderr}\n${logs.raw.join('\n')}`)
        return logs.withMsg(READY_MSG).length >= wanted
      }, READY_TIMEOUT_MS, `${wanted} "${READY_MSG}" line(s)`)
    } catch (err) {
      await stop()
      throw err
    }
  }
  const port = wanted > 0 ? readyPort(logs.lines) as number : 0
  return { child, url: `http://127.0.0.1:${port}`, port, logs, stderr: () => stderr, exited: group.exited, stop }
}
