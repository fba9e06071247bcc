// The checks of `npm run test:container`, run by scripts/container-smoke.sh once it has built the image
// (it passes everything in SMOKE_* variables; run that script, not this file). Each container runs
// the way the Helm chart runs the pod: read-only root filesystem, only /tmp writable (a tmpfs), uid
// 1000, no capabilities, no privilege escalation; it is stopped the way Kubernetes stops it, with
// SIGTERM to PID 1 (`podman stop`).
//
// Networking: every container shares the host's network namespace (--network host), and the relay
// listens on 127.0.0.1 on a port the kernel picks (RELAY_PORT=0; the port is read from its "relay
// ready" log line). So the demo upstream, started by this process on 127.0.0.1, is reachable from the
// container, nothing binds a fixed port that a developer's `npm run dev` may hold, and no traffic
// leaves the loopback interface. (A bridge network with `-p` and host.containers.internal works on
// this machine too, but needs the upstream listening on a non-loopback address.)
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { execFile, spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { promisify } from 'node:util'
import { setTimeout as sleep } from 'node:timers/promises'
import type { Server } from 'node:http'
import { startDemoUpstream } from '../dev/demo-upstream.js'
import { CONTAINER_READY_TIMEOUT_MS, HARDENED, READ_ONLY } from '../harness/container.js'
import { LogCollector, type LogLine } from '../harness/log-lines.js'
import { READY_MSG } from '../harness/relay-process.js'
import { openStream } from '../harness/sse.js'
import { waitFor } from '../harness/wait.js'

const execFileAsync = promisify(execFile)

function required (name: string): string {
  const value = process.env[name]
  if (value === undefined || value === '') throw new Error(`${name} is not set: run scripts/container-smoke.sh, not this file`)
  return value
}

const IMAGE = required('SMOKE_IMAGE')
const BASE_IMAGE = required('SMOKE_BASE_IMAGE')
const VERSION = required('SMOKE_VERSION')
const REVISION = required('SMOKE_REVISION')
const RUN_ID = required('SMOKE_RUN_ID')
const PODMAN = process.env.SMOKE_PODMAN ?? 'podman'
const PODMAN_ARGS = (process.env.SMOKE_PODMAN_ARGS ?? '').split(' ').filter(Boolean)
const RUN_ARGS = (process.env.SMOKE_RUN_ARGS ?? '').split(' ').filter(Boolean)
/**
 * Bound on container start (podman's StartedAt) to the "relay ready" line of a single-process relay.
 * The contract is "well under a second" on real hardware. On the project's 2-core, sandboxed CI
 * machine (slow syscalls) it measures 0.6-0.9 s idle and up to about 1.4 s while other test suites
 * run, so the default bound catches what would break the contract by seconds (an entrypoint script,
 * npm or a TypeScript loader at start-up) without failing on a busy machine. Both measurements (one
 * process, and the default two workers) are printed on every run.
 */
const MAX_STARTUP_MS = Number(process.env.SMOKE_MAX_STARTUP_MS ?? 2000)

/** No single check may hang the run: the whole script stays within a few minutes. */
const LIMIT = { timeout: 90_000 }

const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as {
  license: string
  devDependencies: Record<string, string>
}
/** The lockfile: `dev: true` marks a package that only development installs. */
const lock = JSON.parse(readFileSync(new URL('../package-lock.json', import.meta.url), 'utf8')) as {
  packages: Record<string, { dev?: boolean } | undefined>
}

const LABEL = ['--label', required('SMOKE_LABEL')]

let containerCount = 0
const started = new Set<string>()

async function podman (args: string[], { allowFail = false } = {}): Promise<{ stdout: string, stderr: string, code: number }> {
  try {
    const { stdout, stderr } = await execFileAsync(PODMAN, [...PODMAN_ARGS, ...args], { maxBuffer: 64 * 1024 * 1024, timeout: 120_000 })
    return { stdout, stderr, code: 0 }
  } catch (err) {
    const e = err as { stdout?: string, stderr?: string, code?: number }
    if (!allowFail) throw new Error(`podman ${args.join(' ')} failed (${e.code}): ${e.stderr ?? ''}`)
    return { stdout: e.stdout ?? '', stderr: e.stderr ?? '', code: typeof e.code === 'number' ? e.code : -1 }
  }
}

function containerName (): string {
  const name = `tokenplace-relay-smoke-${RUN_ID}-${++containerCount}`
  started.add(name)
  return name
}

/** Runs a command in a new container to completion (not removed at once: see removeAll). */
async function runOnce (flags: string[], command: string[] = []): Promise<{ stdout: string, stderr: string, code: number }> {
  const name = containerName()
  return await podman(['run', '--name', name, ...LABEL, ...RUN_ARGS, ...flags, IMAGE, ...command], { allowFail: true })
}

async function removeAll (): Promise<void> {
  if (started.size === 0) return
  await podman(['rm', '-f', '-t', '0', '--ignore', ...started], { allowFail: true })
  started.clear()
}

/** A relay container running attached: its stdout read line by line as the JSON logs it must be. */
class RelayContainer {
  readonly name = containerName()
  readonly logs = new LogCollector({ strict: false })
  stderr = ''
  readonly child: ChildProcess
  readonly exited: Promise<number | null>
  #exitCode: number | null | undefined

  constructor (env: Record<string, string>, flags: string[]) {
    const envArgs = Object.entries(env).flatMap(([key, value]) => ['-e', `${key}=${value}`])
    this.child = spawn(PODMAN, [...PODMAN_ARGS, 'run', '--name', this.name, ...LABEL, ...RUN_ARGS, '--network', 'host',
      ...flags, ...envArgs, IMAGE], { stdio: ['ignore', 'pipe', 'pipe'] })
    this.child.stdout?.on('data', (chunk: Buffer) => this.logs.write(chunk))
    this.child.stderr?.on('data', (chunk: Buffer) => { this.stderr += chunk.toString() })
    this.exited = new Promise((resolve) => this.child.once('exit', (code) => { this.#exitCode = code; resolve(code) }))
  }

  get lines (): LogLine[] { return this.logs.lines }
  get notJson (): string[] { return this.logs.notJson }

  find (msg: string): LogLine[] {
    return this.logs.withMsg(msg)
  }

  async waitForLines (msg: string, count: number, timeoutMs: number): Promise<LogLine[]> {
    await waitFor(() => {
      if (this.#exitCode !== undefined) throw new Error(`container exited (${this.#exitCode}) before ${count} "${msg}" line(s):\n${this.logText()}`)
      return this.find(msg).length >= count
    }, timeoutMs, () => `${count} "${msg}" line(s):\n${this.logText()}`, 20)
    return this.find(msg)
  }

  logText (): string {
    return [...this.logs.raw, this.stderr].join('\n')
  }

  async inspect (): Promise<{ StartedAt: string, ExitCode: number, OOMKilled: boolean, Status: string }> {
    const { stdout } = await podman(['inspect', '--format', '{{json .State}}', this.name])
    return JSON.parse(stdout) as { StartedAt: string, ExitCode: number, OOMKilled: boolean, Status: string }
  }
}

/** Milliseconds since the epoch of podman's RFC 3339 time with nanoseconds. */
function parseTime (value: string): number {
  const ms = Date.parse(value.replace(/(\.\d{3})\d*/, '$1'))
  assert.ok(Number.isFinite(ms), `unparsable time ${value}`)
  return ms
}

/** What `podman diff` reports for a container: files added, changed or deleted outside its mounts. */
async function diffOf (name: string): Promise<string[]> {
  const { stdout } = await podman(['diff', name])
  return stdout.split('\n').map((line) => line.trim()).filter(Boolean)
}

interface ImageConfig {
  User: string
  WorkingDir: string
  Entrypoint: string[] | null
  Cmd: string[]
  ExposedPorts: Record<string, unknown>
  Env: string[]
  Labels: Record<string, string>
  StopSignal?: string
}

let upstream: { server: Server, port: number }
let baselineDiff: string[] = []

before(async () => {
  upstream = await startDemoUpstream(0, '127.0.0.1')
  // podman mounts /etc/hosts, /etc/resolv.conf and /etc/hostname into /etc, which its diff reports as a
  // change to /etc even for a container that wrote nothing: measure that instead of assuming it.
  const name = containerName()
  await podman(['run', '--name', name, ...LABEL, ...RUN_ARGS, '--network', 'host', ...HARDENED, IMAGE, 'true'])
  baselineDiff = await diffOf(name)
}, LIMIT)

after(async () => {
  await removeAll()
  upstream?.server.closeAllConnections()
  upstream?.server.close()
}, LIMIT)

function relayEnv (extra: Record<string, string> = {}): Record<string, string> {
  return { RELAY_HOST: '127.0.0.1', RELAY_PORT: '0', UPSTREAM_URL: `http://127.0.0.1:${upstream.port}`, ...extra }
}

/** Reads a whole Server-Sent Events response on a fresh connection, noting when each event arrived. */
async function readStream (url: string): Promise<{ events: Array<{ at: number, data: string }>, total: number }> {
  const stream = await openStream(url)
  assert.equal(stream.status, 200)
  assert.match(stream.headers['content-type'] ?? '', /^text\/event-stream/)
  const { complete, total } = await stream.done
  assert.ok(complete, 'the stream ended, not cut')
  return { events: stream.events, total }
}

test('the image config: uid 1000, /app, exec-form CMD with no entrypoint, port, env and OCI labels', LIMIT, async () => {
  const { stdout } = await podman(['image', 'inspect', '--format', '{{json .Config}}', IMAGE])
  const config = JSON.parse(stdout) as ImageConfig
  assert.equal(config.User, '1000:1000')
  assert.equal(config.WorkingDir, '/app')
  assert.ok(config.Entrypoint === null || config.Entrypoint === undefined || config.Entrypoint.length === 0,
    `no entrypoint (node must be PID 1), got ${JSON.stringify(config.Entrypoint)}`)
  assert.deepEqual(config.Cmd, ['node', 'dist/server.js'])
  assert.deepEqual(Object.keys(config.ExposedPorts), ['5010/tcp'])
  assert.equal(config.StopSignal ?? 'SIGTERM', 'SIGTERM')
  for (const env of ['NODE_ENV=production', 'RELAY_PORT=5010', `RELAY_BUILD_VERSION=${VERSION}`, `RELAY_BUILD_REVISION=${REVISION}`]) {
    assert.ok(config.Env.includes(env), `Env has ${env}: ${JSON.stringify(config.Env)}`)
  }
  const labels = config.Labels
  assert.equal(labels['org.opencontainers.image.version'], VERSION)
  assert.equal(labels['org.opencontainers.image.revision'], REVISION)
  assert.equal(labels['org.opencontainers.image.licenses'], pkg.license)
  assert.equal(labels['org.opencontainers.image.title'], 'tokenplace-relay')
  assert.match(labels['org.opencontainers.image.source'] ?? '', /^https:\/\/github\.com\/[^/]+\/tokenplace-relay$/)
  assert.ok((labels['org.opencontainers.image.description'] ?? '').length > 10, 'a description label')
  assert.equal(labels['org.opencontainers.image.base.name'], BASE_IMAGE)
})

test('the image adds only /app to its base: dist/, production node_modules and package.json', LIMIT, async () => {
  const { stdout } = await podman(['diff', '--format', 'json', IMAGE, BASE_IMAGE])
  const diff = JSON.parse(stdout) as { added?: string[], changed?: string[], deleted?: string[] }
  const outside = [...(diff.added ?? []), ...(diff.changed ?? []), ...(diff.deleted ?? [])].filter((path) => path !== '/app' && !path.startsWith('/app/'))
  assert.deepEqual(outside, [], 'nothing outside /app differs from the base image (no caches, no leftovers)')
  const added = diff.added ?? []
  const top = [...new Set(added.filter((path) => path.startsWith('/app/')).map((path) => path.split('/')[2]))].sort()
  assert.deepEqual(top, ['dist', 'node_modules', 'package.json'])
  // dist/ is the compiled relay: JavaScript only, no maps, no build state.
  const notJs = added.filter((path) => path.startsWith('/app/dist/') && !path.endsWith('.js') && /\.[a-z]+$/.test(path))
  assert.deepEqual(notJs, [], 'dist/ holds only JavaScript')
  const unwanted = added.filter((path) =>
    /\.(ts|mts|cts|map|tsbuildinfo|node|gyp)$/.test(path) || // sources, declarations, maps, native addons
    /^\/app\/node_modules\/(@[^/]+\/)?[^/]+\/(test|tests|__tests__|\.github)$/.test(path) || // packages' own tests
    /\/(\.cache|\.npm|_cacache)(\/|$)/.test(path)) // caches
  assert.deepEqual(unwanted, [], 'no sources, type declarations, source maps, native addons, tests or caches')
  // A dev dependency can also be a production package's dependency (undici, of @fastify/reply-from):
  // the lockfile marks what only development needs.
  for (const name of Object.keys(pkg.devDependencies)) {
    if (lock.packages[`node_modules/${name}`]?.dev !== true) continue
    assert.ok(!added.includes(`/app/node_modules/${name}`), `dev dependency ${name} is not in the image`)
  }
  for (const name of ['fastify', 'pino', '@fastify/reply-from', 'prom-client', 'ioredis']) {
    assert.ok(added.includes(`/app/node_modules/${name}/package.json`), `runtime dependency ${name} is in the image`)
  }
})

test('files are root-owned and not writable by uid 1000, even on a writable root filesystem', LIMIT, async () => {
  // Not --read-only here: the point is the ownership and modes, not the read-only mount.
  const script = [
    'echo "id=$(id -u):$(id -g)"',
    'echo "foreign=$(find /app ! -user 0 -o ! -group 0 | head -n 3)"',
    'echo "groupOrWorldWritable=$(find /app -perm -020 -o -perm -002 | head -n 3)"',
    'for p in /app/x /app/dist/x /app/node_modules/x /app/package.json; do (echo > "$p") 2>/dev/null && echo "wrote=$p"; done',
    'echo "nslookup=$(which nslookup)"',
    'echo done'
  ].join('\n')
  const { stdout, stderr, code } = await runOnce(['--network', 'none', ...HARDENED], ['sh', '-c', script])
  assert.equal(code, 0, stderr)
  const out = Object.fromEntries(stdout.trim().split('\n').map((line) => [line.slice(0, line.indexOf('=')), line.slice(line.indexOf('=') + 1)]))
  assert.equal(out.id, '1000:1000')
  assert.equal(out.foreign, '', 'every file under /app is owned by root:root')
  assert.equal(out.groupOrWorldWritable, '', 'nothing under /app is group- or world-writable')
  assert.equal(out.wrote, undefined, 'uid 1000 cannot write under /app')
  assert.match(out.nslookup ?? '', /\/nslookup$/, 'nslookup is in the image (the deployment guide\'s DNS check)')
})

test('nslookup resolves a name in a container with the pod\'s hardening', LIMIT, async () => {
  // The npm registry's host: this machine resolves it (npm ci just ran). `localhost` is not in DNS.
  const registry = spawnSync('npm', ['config', 'get', 'registry'], { encoding: 'utf8' }).stdout.trim()
  const host = process.env.SMOKE_DNS_NAME ?? new URL(registry || 'https://registry.npmjs.org/').hostname
  const { stdout, stderr, code } = await runOnce(['--network', 'host', ...READ_ONLY, ...HARDENED], ['nslookup', host])
  assert.equal(code, 0, `nslookup ${host} failed: ${stdout}${stderr}`)
  assert.match(stdout, new RegExp(`Name:\\s+${host.replace(/\./g, '\\.')}`))
  assert.match(stdout, /Address:?\s+\S+/)
})

test('a wrong env value: exit 1 before listening, one JSON line that names the variable', LIMIT, async () => {
  const { stdout, stderr, code } = await runOnce(['--network', 'none', ...READ_ONLY, ...HARDENED, '-e', 'RELAY_PORT=abc'])
  assert.equal(code, 1, `exit code: ${stdout}${stderr}`)
  assert.equal(stderr, '')
  const lines = stdout.trim().split('\n')
  assert.equal(lines.length, 1, `one line: ${stdout}`)
  const line = JSON.parse(lines[0] as string) as Record<string, unknown>
  assert.equal(line.level, 'fatal')
  assert.equal(line.variable, 'RELAY_PORT')
  assert.match(String(line.msg), /^invalid configuration: RELAY_PORT="abc": expected an integer from 0 to 65535/)
})

// The chart's pod: default RELAY_WORKERS (2), read-only, stopped with SIGTERM after a drain delay.
const DELAY_SECONDS = 2
let relay: RelayContainer
let base = ''

test('starts read-only as uid 1000, node is PID 1, two workers share the port', LIMIT, async () => {
  relay = new RelayContainer(relayEnv({ RELAY_SHUTDOWN_DELAY_SECONDS: String(DELAY_SECONDS) }), [...READ_ONLY, ...HARDENED])
  const ready = await relay.waitForLines(READY_MSG, 2, CONTAINER_READY_TIMEOUT_MS)
  const ports = new Set(ready.map((line) => line.port))
  assert.equal(ports.size, 1, 'both workers share one port')
  base = `http://127.0.0.1:${String(ready[0]?.port)}`
  const { StartedAt } = await relay.inspect()
  const startedAt = parseTime(StartedAt)
  const times = ready.map((line) => parseTime(line.time)).sort((a, b) => a - b)
  console.log(`# 2 workers: first ready ${(times[0] as number) - startedAt} ms, both ${(times[1] as number) - startedAt} ms after the container started`)

  const { stdout } = await podman(['top', relay.name, 'pid', 'user', 'args'])
  const processes = stdout.trim().split('\n').slice(1).map((line) => line.trim().split(/\s+/))
  assert.equal(processes.length, 3, `the primary and 2 workers: ${stdout}`)
  const pid1 = processes.find((p) => p[0] === '1')
  assert.deepEqual(pid1?.slice(2), ['node', 'dist/server.js'], `PID 1 is node itself: ${stdout}`)
  for (const p of processes) assert.equal(p[1], 'node', `every process runs as the node user (uid 1000): ${stdout}`)
})

test('/livez and /healthz answer 200', LIMIT, async () => {
  const livez = await fetch(`${base}/livez`)
  assert.equal(livez.status, 200)
  assert.deepEqual(await livez.json(), { status: 'alive' })
  const healthz = await fetch(`${base}/healthz`)
  assert.equal(healthz.status, 200)
  assert.equal((await healthz.json() as { status: string }).status, 'ok')
})

test('a proxied request and a proxied upload reach the demo upstream', LIMIT, async () => {
  const models = await fetch(`${base}/v1/models`)
  assert.equal(models.status, 200)
  assert.deepEqual(await models.json(), { object: 'list', data: [{ id: 'demo-model', object: 'model' }] })
  const body = 'x'.repeat(256 * 1024)
  const echo = await fetch(`${base}/echo`, { method: 'POST', body, headers: { 'content-type': 'text/plain' } })
  assert.equal(echo.status, 200)
  assert.equal(await echo.text(), body)
})

test('a streamed (SSE) response arrives event by event, not buffered', LIMIT, async () => {
  const { events, total } = await readStream(`${base}/stream?tokens=5&interval=200`)
  assert.equal(events.length, 6)
  assert.equal(events.at(-1)?.data, '[DONE]')
  assert.deepEqual(JSON.parse(events[0]?.data as string), { index: 0, token: 'Tokens' })
  // 5 events 200 ms apart: the first one must not wait for the last.
  assert.ok(total - (events[0]?.at as number) >= 600, `first event at ${events[0]?.at} ms of ${total} ms`)
})

test('/metrics is Prometheus text with relay_build_info from the build args', LIMIT, async () => {
  const response = await fetch(`${base}/metrics`)
  assert.equal(response.status, 200)
  assert.match(response.headers.get('content-type') ?? '', /^text\/plain/)
  const text = await response.text()
  assert.match(text, new RegExp(`^relay_build_info\\{version="${VERSION.replace(/\./g, '\\.')}",revision="${REVISION}"\\} 1$`, 'm'))
  assert.match(text, /^relay_http_requests_total\{method="GET",endpoint="\/v1\/models",status="200"\} \d+$/m)
  assert.match(text, /^process_cpu_user_seconds_total /m)
})

test('podman stop (SIGTERM to PID 1): readiness 503, in-flight stream completes, exit 0 after the drain', LIMIT, async () => {
  const stream = readStream(`${base}/stream?tokens=12&interval=250`) // 3 s, longer than the delay
  await sleep(300)
  const t0 = Date.now()
  const stopped = podman(['stop', '-t', '40', relay.name])
  let sawTerminating = false
  while (Date.now() - t0 < DELAY_SECONDS * 1000 - 500) {
    const response = await fetch(`${base}/healthz`).catch(() => undefined)
    if (response?.status === 503) {
      assert.deepEqual(await response.json(), { status: 'terminating' })
      sawTerminating = true
      break
    }
    await response?.arrayBuffer()
    await sleep(50)
  }
  assert.ok(sawTerminating, '/healthz turned 503 terminating during the drain delay')
  // During the delay the relay still serves new requests.
  assert.equal((await fetch(`${base}/v1/models`)).status, 200)

  const { events } = await stream
  assert.equal(events.at(-1)?.data, '[DONE]', 'the in-flight stream ran to its end')
  await stopped
  const elapsed = Date.now() - t0
  assert.equal(await relay.exited, 0, relay.logText())
  const state = await relay.inspect()
  assert.equal(state.ExitCode, 0, 'exit code 0, not 137 (SIGKILL after podman\'s timeout)')
  assert.ok(elapsed >= DELAY_SECONDS * 1000, `stopped after ${elapsed} ms, not before the ${DELAY_SECONDS} s delay`)
  assert.ok(relay.lines.some((line) => line.msg === 'shutdown requested: draining the workers' && line.signal === 'SIGTERM'), relay.logText())
  assert.equal(relay.find('shutdown complete').length, 2, 'both workers drained')
  assert.equal(relay.find('all workers stopped').length, 1)
  assert.deepEqual(relay.find('shutdown timeout reached: closing the remaining connections'), [], 'drained before the timeout')
  console.log(`# SIGTERM to exit: ${elapsed} ms (drain delay ${DELAY_SECONDS} s, the in-flight stream ended about 3 s after it started)`)
})

test('the read-only run logged only JSON lines on stdout, nothing on stderr, and changed no file', LIMIT, async () => {
  assert.deepEqual(relay.notJson, [], 'every stdout line is JSON')
  assert.equal(relay.stderr, '', 'nothing on stderr (no warnings, no EROFS)')
  assert.deepEqual(relay.lines.filter((line) => ['error', 'fatal'].includes(line.level)), [])
  assert.deepEqual(await diffOf(relay.name), baselineDiff)
})

test('on a writable root filesystem a single-process relay writes no file at all, and stops with exit 0', LIMIT, async () => {
  const single = new RelayContainer(relayEnv({ RELAY_WORKERS: '1', RELAY_SHUTDOWN_DELAY_SECONDS: '0' }), HARDENED)
  const [ready] = await single.waitForLines(READY_MSG, 1, CONTAINER_READY_TIMEOUT_MS)
  const startup = parseTime(ready?.time as string) - parseTime((await single.inspect()).StartedAt)
  console.log(`# 1 process: ready ${startup} ms after the container started`)
  const url = `http://127.0.0.1:${String(ready?.port)}`
  for (const path of ['/healthz', '/livez', '/metrics', '/v1/models', '/stream?tokens=2&interval=10', '/missing']) {
    await (await fetch(url + path)).arrayBuffer()
  }
  // /tmp is a tmpfs (an emptyDir in the chart), outside podman diff: look into it before it goes.
  const tmp = await podman(['exec', single.name, 'ls', '-A', '/tmp'])
  await podman(['stop', '-t', '30', single.name])
  assert.equal(await single.exited, 0)
  assert.equal(tmp.stdout.trim(), '', 'nothing written to /tmp either')
  assert.deepEqual(single.notJson, [])
  assert.equal(single.stderr, '')
  assert.deepEqual(await diffOf(single.name), baselineDiff, 'no file written outside /tmp')
  assert.ok(startup < MAX_STARTUP_MS, `ready ${startup} ms after the container started (bound ${MAX_STARTUP_MS} ms)`)
})
