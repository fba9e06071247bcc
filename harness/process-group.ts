// Every process a harness starts runs in a process group of its own (spawn's `detached`): signalling
// the group reaches what the process started too (the relay's workers, nginx's workers), and the
// signals that end this process (Ctrl-C reaches the terminal's foreground group, a test timeout)
// do not reach them. So this module also ends, when this process ends, every group still running,
// and runs the cleanups registered with onExit: no relay, nginx or container outlives a run.
import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process'

export interface Exit { code: number | null, signal: NodeJS.Signals | null }

export interface GroupProcess {
  child: ChildProcess
  /** The process's pid, which is also its group's id */
  pid: number
  exited: Promise<Exit>
  hasExited: () => boolean
}

/** Groups started and not yet stopped: a group outlives its leader while workers remain. */
const running = new Set<number>()
const cleanups = new Set<() => void>()
let hooked = false

function endAll (): void {
  for (const pid of running) signalGroup(pid, 'SIGKILL')
  running.clear()
  for (const cleanup of cleanups) {
    try { cleanup() } catch {}
  }
  cleanups.clear()
}

function hook (): void {
  if (hooked) return
  hooked = true
  process.once('exit', endAll)
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    // Once: after the cleanup, the same signal again ends this process the way it would have.
    process.once(signal, () => { endAll(); process.kill(process.pid, signal) })
  }
}

/** Runs `cleanup` (synchronously) if this process ends before the returned function is called. */
export function onExit (cleanup: () => void): () => void {
  hook()
  cleanups.add(cleanup)
  return () => { cleanups.delete(cleanup) }
}

/** Starts `file args` as the leader of a new process group. */
export function spawnGroup (file: string, args: readonly string[], options: Omit<SpawnOptions, 'detached'> = {}): GroupProcess {
  hook()
  const child = spawn(file, args, { ...options, detached: true })
  if (child.pid === undefined) {
    // spawn reports a missing program asynchronously; the error is in the 'error' event.
    child.once('error', () => {})
    throw new Error(`could not start ${file} ${args.join(' ')}`)
  }
  const pid = child.pid
  running.add(pid)
  let done = false
  const exited = new Promise<Exit>((resolve) => {
    child.once('exit', (code, signal) => { done = true; resolve({ code, signal }) })
    child.once('error', () => { done = true; resolve({ code: null, signal: null }) })
  })
  return { child, pid, exited, hasExited: () => done }
}

export function signalGroup (pid: number, signal: NodeJS.Signals): void {
  try { process.kill(-pid, signal) } catch {}
}

export function groupAlive (pid: number): boolean {
  try {
    process.kill(-pid, 0)
    return true
  } catch {
    return false
  }
}

/** SIGKILL to the whole group at once (the leader may be gone while its workers still run). */
export async function killGroup (p: GroupProcess): Promise<void> {
  signalGroup(p.pid, 'SIGKILL')
  if (!p.hasExited()) await p.exited
  running.delete(p.pid)
}

/** SIGTERM to the group, SIGKILL after `graceMs`; then up to a second for the workers to follow. */
export async function stopGroup (p: GroupProcess, graceMs = 3000): Promise<void> {
  if (!(p.hasExited() && !groupAlive(p.pid))) {
    signalGroup(p.pid, 'SIGTERM')
    const timer = setTimeout(() => signalGroup(p.pid, 'SIGKILL'), graceMs)
    await p.exited
    clearTimeout(timer)
    // Workers can outlive their primary for a moment; nginx workers their master.
    for (let i = 0; i < 50 && groupAlive(p.pid); i++) await new Promise((resolve) => setTimeout(resolve, 20))
    if (groupAlive(p.pid)) signalGroup(p.pid, 'SIGKILL')
  }
  running.delete(p.pid)
}
