// Two ways to run the relay in a test, both the way production does: the app built in this process
// from a config (routing, proxying), or the built dist/server.js as a child process (signals,
// workers, configuration errors), which harness/relay-process.ts starts for the soak and the
// benchmark too.
import type { AddressInfo } from 'node:net'
import type { FastifyInstance } from 'fastify'
import assert from 'node:assert/strict'
import { buildApp } from '../../src/app.js'
import { loadConfig } from '../../src/config.js'
import { LogCollector } from '../../harness/log-lines.js'
import type { RelayProcess } from '../../harness/relay-process.js'

export { LogCollector, type LogLine } from '../../harness/log-lines.js'
export { SERVER_JS, spawnRelay, type RelayProcess, type SpawnOptions } from '../../harness/relay-process.js'

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

/** Resolves with the exit code once the process exits; fails the test if that takes longer than `ms`. */
export async function exitWithin (relay: RelayProcess, ms: number): Promise<{ code: number | null, elapsed: number }> {
  const started = Date.now()
  const result = await Promise.race([relay.exited, new Promise<null>((resolve) => setTimeout(() => resolve(null), ms))])
  assert.ok(result !== null, `the relay did not exit within ${ms} ms`)
  return { code: result.code, elapsed: Date.now() - started }
}
