// Every process the benchmark starts goes through here: in a process group of its own
// (harness/process-group.ts, which also ends them if the run is interrupted), pinned to CPUs with
// taskset when asked, with stdout and stderr in files of the run's temporary folder (the relay
// logs to a file, as a pod's log goes to a file on its node).
import { spawnSync } from 'node:child_process'
import { closeSync, openSync, readFileSync } from 'node:fs'
import { request } from 'node:http'
import { join } from 'node:path'
import { LogCollector } from '../../harness/log-lines.js'
import { spawnGroup, stopGroup, type GroupProcess } from '../../harness/process-group.js'
import { READY_MSG, READY_TIMEOUT_MS } from '../../harness/relay-process.js'
import { waitFor } from '../../harness/wait.js'

/**
 * The open-files limit; re-runs this script under a raised one when it is below `needed` (the
 * idle connections, the token streams: a socket each, and as many again in the upstream).
 */
export function ensureFdLimit (needed: number, log: (message: string) => void): number {
  const shell = (command: string): string => spawnSync('sh', ['-c', command], { encoding: 'utf8' }).stdout.trim()
  const soft = Number(shell('ulimit -n'))
  if (soft >= needed || process.env.BENCH_FD_RAISED === '1') return soft
  const hard = shell('ulimit -Hn')
  const target = hard === 'unlimited' ? needed : Math.min(needed, Number(hard))
  log(`raising the open-files limit from ${soft} to ${target} and starting again`)
  const r = spawnSync('sh', ['-c', `ulimit -n ${target} && exec "$@"`, 'sh', process.execPath, ...process.execArgv, ...process.argv.slice(1)],
    { stdio: 'inherit', env: { ...process.env, BENCH_FD_RAISED: '1' } })
  process.exit(r.status ?? 1)
}

/** Whether `command` is on PATH. */
export function has (command: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${command}`], { stdio: 'ignore' }).status === 0
}

export interface Managed extends GroupProcess {
  name: string
  stdoutFile: string
  stderrFile: string
  /** The command as run, for RESULTS.md */
  commandLine: string
}

export interface SpawnOptions {
  env?: NodeJS.ProcessEnv
  /** taskset CPU list, e.g. "0" or "1-3"; undefined = not pinned */
  cpus?: string
  cwd?: string
}

function quote (arg: string): string {
  return /^[\w@%+=:,./-]+$/.test(arg) ? arg : `'${arg.replace(/'/g, "'\\''")}'`
}

export function commandLine (cmd: string, args: readonly string[], env: Record<string, string> = {}): string {
  const vars = Object.entries(env).map(([k, v]) => `${k}=${quote(v)}`)
  return [...vars, quote(cmd), ...args.map(quote)].join(' ')
}

export class ProcessRegistry {
  readonly #dir: string
  readonly #live = new Set<Managed>()
  #count = 0

  constructor (dir: string) {
    this.#dir = dir
  }

  /** Starts `cmd args` in its own process group; `shownEnv` is only what RESULTS.md shows of the environment. */
  spawn (name: string, cmd: string, args: readonly string[], options: SpawnOptions = {}, shownEnv: Record<string, string> = {}): Managed {
    const n = ++this.#count
    const stdoutFile = join(this.#dir, `${n}-${name}.out`)
    const stderrFile = join(this.#dir, `${n}-${name}.err`)
    const out = openSync(stdoutFile, 'w')
    const err = openSync(stderrFile, 'w')
    // taskset execs the command: the pid we get is the program's own.
    const [file, argv] = options.cpus === undefined ? [cmd, [...args]] : ['taskset', ['-c', options.cpus, cmd, ...args]]
    let group: GroupProcess
    try {
      group = spawnGroup(file, argv, { env: options.env ?? process.env, cwd: options.cwd, stdio: ['ignore', out, err] })
    } finally {
      closeSync(out)
      closeSync(err)
    }
    const managed: Managed = { ...group, name, stdoutFile, stderrFile, commandLine: commandLine(file, argv, shownEnv) }
    this.#live.add(managed)
    return managed
  }

  /** Runs a command to its end (wrk), in its own group too, so an interrupted run can kill it. */
  async run (name: string, cmd: string, args: readonly string[], options: SpawnOptions = {}): Promise<{ code: number | null, stdout: string, stderr: string, commandLine: string }> {
    const managed = this.spawn(name, cmd, args, options)
    const { code } = await managed.exited
    await this.stop(managed)
    return { code, stdout: readFileSync(managed.stdoutFile, 'utf8'), stderr: readFileSync(managed.stderrFile, 'utf8'), commandLine: managed.commandLine }
  }

  /** SIGTERM to the process's group, SIGKILL after `graceMs`. */
  async stop (managed: Managed, graceMs = 3000): Promise<void> {
    await stopGroup(managed, graceMs)
    this.#live.delete(managed)
  }

  async stopAll (): Promise<void> {
    await Promise.all([...this.#live].map(async (m) => await this.stop(m)))
  }
}

export interface HttpAnswer { status: number, body: string }

/** One GET on a fresh connection. */
export function httpGet (url: string, timeoutMs = 2000): Promise<HttpAnswer> {
  return new Promise((resolve, reject) => {
    const req = request(url, { agent: false, timeout: timeoutMs }, (res) => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (chunk: string) => { body += chunk })
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }))
      res.on('error', reject)
    })
    req.on('timeout', () => req.destroy(new Error(`GET ${url} timed out`)))
    req.on('error', reject)
    req.end()
  })
}

function exitedEarly (managed: Managed, what: string): Error {
  return new Error(`${managed.name} exited before ${what}:\n${tail(managed.stderrFile)}\n${tail(managed.stdoutFile)}`)
}

/** Polls `url` until it answers 200, failing early (with the process's stderr) if `managed` exits. */
export async function waitUntilServing (url: string, managed: Managed, timeoutMs = READY_TIMEOUT_MS): Promise<void> {
  let last = ''
  await waitFor(async () => {
    if (managed.hasExited()) throw exitedEarly(managed, `serving ${url}`)
    const answer = await httpGet(url, 1000).catch((err: unknown) => ({ status: 0, body: String(err) }))
    last = `status ${answer.status}: ${answer.body.slice(0, 200)}`
    return answer.status === 200
  }, timeoutMs, () => `${managed.name} to serve ${url} (last: ${last}):\n${tail(managed.stderrFile)}`, 50)
}

/**
 * Polls a process's stdout for `count` JSON lines saying it is ready (the relay's, one per worker,
 * or `ready` from bench/servers) and returns the port the first one names.
 */
export async function waitForReadyLine (managed: Managed, count = 1, timeoutMs = READY_TIMEOUT_MS): Promise<number> {
  let ready: number[] = []
  await waitFor(() => {
    const logs = new LogCollector({ strict: false })
    logs.write(readFileSync(managed.stdoutFile))
    ready = logs.lines.filter((l) => (l.msg === READY_MSG || l.msg === 'ready') && typeof l.port === 'number').map((l) => l.port as number)
    if (ready.length >= count) return true
    if (managed.hasExited()) throw exitedEarly(managed, 'it was ready')
    return false
  }, timeoutMs, () => `${count} ready line(s) from ${managed.name}:\n${tail(managed.stderrFile)}`, 25)
  return ready[0] as number
}

export function tail (file: string, lines = 20): string {
  try {
    return readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n')
  } catch {
    return ''
  }
}
