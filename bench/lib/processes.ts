// Every process the benchmark starts goes through here: each in its own process group (nginx's
// master and workers, the relay's cluster), pinned to CPUs with taskset when asked, with stdout and
// stderr in files of the run's temporary folder. stopAll() and killAllSync() end those groups and
// nothing else.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { closeSync, openSync, readFileSync } from 'node:fs'
import { request } from 'node:http'
import { createServer, type AddressInfo } from 'node:net'
import { join } from 'node:path'

/** Whether `command` is on PATH. */
export function has (command: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${command}`], { stdio: 'ignore' }).status === 0
}

export interface Managed {
  name: string
  pid: number
  child: ChildProcess
  stdoutFile: string
  stderrFile: string
  /** The command as run, for RESULTS.md */
  commandLine: string
  exited: Promise<{ code: number | null, signal: NodeJS.Signals | null }>
  hasExited: () => boolean
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
    let child: ChildProcess
    try {
      child = spawn(file, argv, { env: options.env ?? process.env, cwd: options.cwd, stdio: ['ignore', out, err], detached: true })
    } finally {
      closeSync(out)
      closeSync(err)
    }
    if (child.pid === undefined) throw new Error(`could not start ${name}: ${file} ${argv.join(' ')}`)
    let done = false
    const exited = new Promise<{ code: number | null, signal: NodeJS.Signals | null }>((resolve) => {
      child.once('exit', (code, signal) => { done = true; resolve({ code, signal }) })
      child.once('error', () => { done = true; resolve({ code: null, signal: null }) })
    })
    const managed: Managed = {
      name,
      pid: child.pid,
      child,
      stdoutFile,
      stderrFile,
      commandLine: commandLine(file, argv, shownEnv),
      exited,
      hasExited: () => done
    }
    this.#live.add(managed)
    exited.then(() => this.#live.delete(managed), () => {})
    return managed
  }

  /** Runs a command to its end (wrk), in its own group too, so an interrupted run can kill it. */
  async run (name: string, cmd: string, args: readonly string[], options: SpawnOptions = {}): Promise<{ code: number | null, stdout: string, stderr: string, commandLine: string }> {
    const managed = this.spawn(name, cmd, args, options)
    const { code } = await managed.exited
    return { code, stdout: readFileSync(managed.stdoutFile, 'utf8'), stderr: readFileSync(managed.stderrFile, 'utf8'), commandLine: managed.commandLine }
  }

  /** SIGTERM to the process's group, SIGKILL after `graceMs`. */
  async stop (managed: Managed, graceMs = 3000): Promise<void> {
    if (managed.hasExited() && !groupAlive(managed.pid)) return
    signalGroup(managed.pid, 'SIGTERM')
    const timer = setTimeout(() => signalGroup(managed.pid, 'SIGKILL'), graceMs)
    await managed.exited
    clearTimeout(timer)
    // Workers can outlive their primary for a moment; nginx workers their master.
    for (let i = 0; i < 50 && groupAlive(managed.pid); i++) await new Promise((resolve) => setTimeout(resolve, 20))
    if (groupAlive(managed.pid)) signalGroup(managed.pid, 'SIGKILL')
  }

  async stopAll (): Promise<void> {
    await Promise.all([...this.#live].map((m) => this.stop(m)))
  }

  /** For exit paths that cannot wait: SIGKILL every group this registry started. */
  killAllSync (): void {
    for (const managed of this.#live) signalGroup(managed.pid, 'SIGKILL')
    this.#live.clear()
  }
}

function signalGroup (pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal)
  } catch {}
}

function groupAlive (pid: number): boolean {
  try {
    process.kill(-pid, 0)
    return true
  } catch {
    return false
  }
}

/** A port that was free a moment ago on 127.0.0.1 (for programs that need one in their config). */
export async function freePort (): Promise<number> {
  const server = createServer()
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => resolve())
  })
  const { port } = server.address() as AddressInfo
  await new Promise<void>((resolve) => server.close(() => resolve()))
  return port
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

/** Polls `url` until it answers 200, failing early (with the process's stderr) if `managed` exits. */
export async function waitUntilServing (url: string, managed: Managed, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  let last = ''
  while (Date.now() < deadline) {
    if (managed.hasExited()) {
      throw new Error(`${managed.name} exited before serving ${url}:\n${tail(managed.stderrFile)}\n${tail(managed.stdoutFile)}`)
    }
    try {
      const answer = await httpGet(url, 1000)
      if (answer.status === 200) return
      last = `status ${answer.status}: ${answer.body.slice(0, 200)}`
    } catch (err) {
      last = String(err)
    }
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  throw new Error(`${managed.name} did not serve ${url} within ${timeoutMs} ms (last: ${last}):\n${tail(managed.stderrFile)}`)
}

/** Polls a process's stdout for a JSON line with msg `ready` (or the relay's `relay ready`) and returns its port. */
export async function waitForReadyLine (managed: Managed, timeoutMs = 15_000): Promise<number> {
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    for (const line of readFileSync(managed.stdoutFile, 'utf8').split('\n')) {
      if (!line.startsWith('{')) continue
      try {
        const parsed = JSON.parse(line) as { msg?: string, port?: number }
        if ((parsed.msg === 'ready' || parsed.msg === 'relay ready') && typeof parsed.port === 'number') return parsed.port
      } catch {}
    }
    if (managed.hasExited()) throw new Error(`${managed.name} exited before it was ready:\n${tail(managed.stderrFile)}\n${tail(managed.stdoutFile)}`)
    await new Promise((resolve) => setTimeout(resolve, 25))
  }
  throw new Error(`${managed.name} printed no ready line within ${timeoutMs} ms:\n${tail(managed.stderrFile)}`)
}

export function tail (file: string, lines = 20): string {
  try {
    return readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n')
  } catch {
    return ''
  }
}
