// Linux /proc: CPU time and memory of the processes under test, the machine's load, and process trees.
// The parsers are pure (unit-tested); the readers return undefined for a process that has gone.
import { readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { cpus as machineCpus } from 'node:os'

export interface ProcStat {
  pid: number
  comm: string
  state: string
  ppid: number
  /** User-mode CPU time of all the process's threads, in clock ticks */
  utime: number
  /** Kernel-mode CPU time of all the process's threads, in clock ticks */
  stime: number
  /** User and kernel CPU time of the children it has waited for, in clock ticks */
  cutime: number
  cstime: number
}

/**
 * Parses /proc/<pid>/stat. The command name sits in parentheses and may itself hold spaces and
 * parentheses, so the fields are counted from the last `)`.
 */
export function parseProcStat (text: string): ProcStat {
  const open = text.indexOf('(')
  const close = text.lastIndexOf(')')
  if (open < 0 || close < open) throw new Error(`not a /proc/<pid>/stat line: ${text.slice(0, 80)}`)
  const rest = text.slice(close + 2).trim().split(/\s+/)
  // rest[0] is field 3 (state); field n is rest[n - 3].
  const field = (n: number): number => {
    const value = Number(rest[n - 3])
    if (!Number.isFinite(value)) throw new Error(`/proc/<pid>/stat field ${n} is not a number: ${text.slice(0, 120)}`)
    return value
  }
  return {
    pid: Number(text.slice(0, open).trim()),
    comm: text.slice(open + 1, close),
    state: rest[0] ?? '?',
    ppid: field(4),
    utime: field(14),
    stime: field(15),
    cutime: field(16),
    cstime: field(17)
  }
}

export interface ProcMemory {
  /** Resident set size now, bytes */
  rss: number
  /** Peak resident set size (since start or the last clear_refs 5), bytes */
  hwm: number
}

/** Parses VmRSS and VmHWM (kB) out of /proc/<pid>/status. */
export function parseProcStatus (text: string): ProcMemory {
  const kb = (name: string): number => {
    const m = new RegExp(`^${name}:\\s+(\\d+) kB$`, 'm').exec(text)
    if (m === null) throw new Error(`/proc/<pid>/status has no ${name} line (a kernel thread or a zombie?)`)
    return Number(m[1]) * 1024
  }
  return { rss: kb('VmRSS'), hwm: kb('VmHWM') }
}

export interface LoadAverage { one: number, five: number, fifteen: number }

export function parseLoadavg (text: string): LoadAverage {
  const [one, five, fifteen] = text.trim().split(/\s+/).map(Number)
  if (![one, five, fifteen].every((n) => Number.isFinite(n))) throw new Error(`not /proc/loadavg: ${text}`)
  return { one: one as number, five: five as number, fifteen: fifteen as number }
}

export interface CpuTimes {
  /** Ticks processes ran, in user or kernel mode (user + nice + system), summed over CPUs */
  process: number
  /** Ticks in interrupt and softirq handlers (much of loopback networking), attributed to no process */
  interrupts: number
  /** Ticks idle or waiting for I/O */
  idle: number
  /** Ticks the hypervisor gave to someone else */
  steal: number
}

/** The aggregate `cpu` line of /proc/stat. Guest time is already inside user and nice. */
export function parseProcStatCpu (text: string): CpuTimes {
  const line = text.split('\n').find((l) => l.startsWith('cpu '))
  if (line === undefined) throw new Error('/proc/stat has no aggregate cpu line')
  const [user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0, steal = 0] = line.trim().split(/\s+/).slice(1).map(Number)
  return { process: user + nice + system, interrupts: irq + softirq, idle: idle + iowait, steal }
}

/** Parent → children, from a list of stats (all of /proc at one moment). */
export function descendantsOf (root: number, stats: readonly ProcStat[]): number[] {
  const children = new Map<number, number[]>()
  for (const s of stats) {
    const list = children.get(s.ppid) ?? []
    list.push(s.pid)
    children.set(s.ppid, list)
  }
  const found: number[] = []
  const queue = [root]
  while (queue.length > 0) {
    const pid = queue.shift() as number
    for (const child of children.get(pid) ?? []) {
      found.push(child)
      queue.push(child)
    }
  }
  return found
}

function readText (path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8')
  } catch {
    return undefined
  }
}

export function readProcStat (pid: number): ProcStat | undefined {
  const text = readText(`/proc/${pid}/stat`)
  return text === undefined ? undefined : parseProcStat(text)
}

export function readProcMemory (pid: number): ProcMemory | undefined {
  const text = readText(`/proc/${pid}/status`)
  if (text === undefined) return undefined
  try {
    return parseProcStatus(text)
  } catch {
    return undefined
  }
}

/** The CPUs of a list such as /proc's Cpus_allowed_list, "0-2,5" → [0, 1, 2, 5]. */
export function parseCpuList (text: string): number[] {
  const cpus: number[] = []
  for (const part of text.trim().split(',')) {
    const [a, b] = part.split('-').map(Number)
    if (part === '' || a === undefined || !Number.isInteger(a)) continue
    for (let c = a; c <= (b ?? a); c++) cpus.push(c)
  }
  return cpus
}

/** The CPUs this process may run on (cgroup cpusets and taskset included), from /proc/self/status. */
export function allowedCpus (): number[] {
  const cpus = parseCpuList(/^Cpus_allowed_list:\s*(.+)$/m.exec(readText('/proc/self/status') ?? '')?.[1] ?? '')
  return cpus.length > 0 ? cpus : machineCpus().map((_, i) => i)
}

export function readLoadavg (): LoadAverage {
  return parseLoadavg(readFileSync('/proc/loadavg', 'utf8'))
}

export function readCpuTimes (): CpuTimes {
  return parseProcStatCpu(readFileSync('/proc/stat', 'utf8'))
}

/** `root` and every process below it, as /proc shows them now. */
export function processTree (root: number): number[] {
  const stats: ProcStat[] = []
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue
    const s = readProcStat(Number(name))
    if (s !== undefined) stats.push(s)
  }
  return [root, ...descendantsOf(root, stats)]
}

/** utime + stime of the processes, in ticks (a process that has gone counts 0). */
export function cpuTicks (pids: readonly number[]): number {
  let total = 0
  for (const pid of pids) {
    const s = readProcStat(pid)
    if (s !== undefined) total += s.utime + s.stime
  }
  return total
}

/**
 * CPU time of every thread of the processes, ns, from /proc/<pid>/task/<tid>/schedstat: exact where
 * /proc/<pid>/stat counts 10 ms ticks (a thread that exits takes its share with it).
 */
export function cpuNs (pids: readonly number[]): number {
  let total = 0
  for (const pid of pids) {
    let tids: string[]
    try {
      tids = readdirSync(`/proc/${pid}/task`)
    } catch {
      continue
    }
    for (const tid of tids) total += Number(readText(`/proc/${pid}/task/${tid}/schedstat`)?.split(' ')[0] ?? 0)
  }
  return total
}

/** VmRSS summed over the processes, bytes. */
export function rssBytes (pids: readonly number[]): number {
  let total = 0
  for (const pid of pids) total += readProcMemory(pid)?.rss ?? 0
  return total
}

/** VmHWM summed over the processes, bytes (an upper bound of the peak of the sum). */
export function hwmBytes (pids: readonly number[]): number {
  let total = 0
  for (const pid of pids) total += readProcMemory(pid)?.hwm ?? 0
  return total
}

/**
 * Resets each process's VmHWM to its current RSS (`echo 5 > /proc/<pid>/clear_refs`, Linux 4.0+,
 * allowed on one's own processes). Returns false when the kernel refused for any of them.
 */
export function resetPeakRss (pids: readonly number[]): boolean {
  let ok = true
  for (const pid of pids) {
    try {
      writeFileSync(`/proc/${pid}/clear_refs`, '5')
    } catch {
      ok = false
    }
  }
  return ok
}
