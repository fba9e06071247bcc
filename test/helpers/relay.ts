// Two ways to run the relay in a test, both the way production does: the app built in this process
// from a config (routing, proxying), or the built dist/server.js as a child process (signals,
// workers, configuration errors).
import { spawn, type ChildProcess } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import type { AddressInfo } from 'node:net'
import type { FastifyInstance } from 'fastify'
import { buildApp } from '../../src/app.js'
import { loadConfig } from '../../src/config.js'
import assert from 'node:assert/strict'
import { waitFor } from './upstreams.js'

export const SERVER_JS = fileURLToPath(new URL('../../dist/server.js', import.meta.url))
const COVERAGE_PROBE = fileURLToPath(new URL('./coverage-probe.mjs', import.meta.url))
/** c8 is collecting coverage: spawned relays flush theirs before they are stopped. */
const COLLECTING_COVERAGE = process.env.NODE_V8_COVERAGE !== undefined

export type LogLine = Record<string, unknown> & { level: string, msg: string, time: string }

/** Collects pino's output, one parsed JSON object per line (and fails loudly on a line that is not JSON). */
export class LogCollector {
  readonly lines: LogLine[] = []
  readonly raw: string[] = []
  #partial = ''

  write (chunk: string | Buffer): void {
    const text = this.#partial + chunk.toString()
    const parts = text.split('\n')
    this.#partial = parts.pop() ?? ''
    for (const part of parts) {
      if (part === '') continue
      this.raw.push(part)
      this.lines.push(JSON.parse(part) as LogLine)
    }
  }

  find (predicate: (line: LogLine) => boolean): LogLine | undefined {
    return this.lines.find(predicate)
  }

  async waitFor (predicate: (line: LogLine) => boolean, timeoutMs = 5000, what = 'a log line'): Promise<LogLine> {
    await waitFor(() => this.lines.some(predicate), timeoutMs, what)
    return this.lines.find(predicate) as LogLine
  }
}

export interface InProcessRelay {
  url: string
  port: number
  app: FastifyInstance
  logs: LogCollector
  close(): Promise<void>
}

/** Builds the app from an environment, as server.ts does, and listens on an ephemeral loopback port. */
export async function startRelay (env: Record<string, string>): Promise<InProcessRelay> {
  const logs = new LogCollector()
  const config = loadConfig({ RELAY_SHUTDOWN_DELAY_SECONDS: '0', ...env })
  const app = await buildApp(config, { logDestination: { write: (chunk: string) => logs.write(chunk) } })
  await app.listen({ port: 0, host: '127.0.0.1' })
  const { port } = app.server.address() as AddressInfo
  return { url: `http://127.0.0.1:${port}`, port, app, logs, close: () => app.close() }
}

export interface RelayProcess {
  child: ChildProcess
  url: string
  port: number
  logs: LogCollector
  stderr: () => string
  exited: Promise<{ code: number | null, signal: NodeJS.Signals | null }>
  /** Kills the process and its workers (its whole process group) if they still run. */
  stop(): Promise<void>
}

export interface SpawnOptions {
  /** Wait for this many "relay ready" lines (one per worker); 0 returns at once. */
  ready?: number
  /** Extra Node.js options, before the script (e.g. test instrumentation loaded with --import). */
  nodeOptions?: string[]
}

// Relays run in their own process group, out of reach of the signals that end a test run: if this
// process ends before a test's cleanup ran (a timeout, Ctrl-C), take them down with it.
const running = new Set<number>()
function killAll (): void {
  for (const pid of running) { try { process.kill(-pid, 'SIGKILL') } catch {} }
}
process.once('exit', killAll)
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.once(signal, () => { killAll(); process.kill(process.pid, signal) })
}

/** Starts `node dist/server.js` with the given environment on an ephemeral loopback port. */
export async function spawnRelay (env: Record<string, string>, options: SpawnOptions = {}): Promise<RelayProcess> {
  const inherited = Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith('RELAY_') && name !== 'UPSTREAM_URL'))
  // NODE_OPTIONS, not an argument: cluster workers inherit it.
  const coverage = COLLECTING_COVERAGE ? { NODE_OPTIONS: `${inherited.NODE_OPTIONS ?? ''} --import ${COVERAGE_PROBE}`.trim() } : {}
  const child = spawn(process.execPath, [...(options.nodeOptions ?? []), SERVER_JS], {
    env: { ...inherited, ...coverage, RELAY_HOST: '127.0.0.1', RELAY_PORT: '0', RELAY_WORKERS: '1', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
    // Its own process group: stop() kills the workers too, and a test can signal the group the way a
    // terminal's Ctrl-C does.
    detached: true
  })
  const logs = new LogCollector()
  let stderr = ''
  child.stdout?.on('data', (chunk: Buffer) => logs.write(chunk))
  child.stderr?.on('data', (chunk: Buffer) => { stderr += chunk.toString() })
  running.add(child.pid as number)
  const exited = new Promise<{ code: number | null, signal: NodeJS.Signals | null }>((resolve) => {
    child.once('exit', (code, signal) => resolve({ code, signal }))
  })
  const stop = async (): Promise<void> => {
    const group = -(child.pid as number)
    if (COLLECTING_COVERAGE) {
      try { process.kill(group, 'SIGXFSZ') } catch {}
      await waitFor(() => { try { process.kill(group, 0); return false } catch { return true } }, 2000, 'the relay to write its coverage').catch(() => {})
    }
    // Workers outlive a killed primary for a moment: kill the group even when the primary is gone.
    try { process.kill(group, 'SIGKILL') } catch {}
    if (child.exitCode === null && child.signalCode === null) await exited
    running.delete(child.pid as number)
  }

  const wanted = options.ready ?? 1
  let port = 0
  if (wanted > 0) {
    const ready = (line: LogLine): boolean => line.msg === 'relay ready'
    try {
      await Promise.race([
        waitFor(() => logs.lines.filter(ready).length >= wanted, 15_000, `${wanted} "relay ready" line(s)`),
        exited.then(({ code }) => { throw new Error(`relay exited with ${code} before it was ready:\n${stderr}\n${logs.raw.join('\n')}`) })
      ])
    } catch (err) {
      await stop()
      throw err
    }
    port = Number(logs.find(ready)?.port)
  }
  return { child, url: `http://127.0.0.1:${port}`, port, logs, stderr: () => stderr, exited, stop }
}

/** Resolves with the exit code once the process exits; fails the test if that takes longer than `ms`. */
export async function exitWithin (relay: RelayProcess, ms: number): Promise<{ code: number | null, elapsed: number }> {
  const started = Date.now()
  const result = await Promise.race([relay.exited, new Promise<null>((resolve) => setTimeout(() => resolve(null), ms))])
  assert.ok(result !== null, `the relay did not exit within ${ms} ms`)
  return { code: result.code, elapsed: Date.now() - started }
}
