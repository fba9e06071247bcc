// /proc parsing: CPU ticks, memory, load and process trees.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { allowedCpus, cpuNs, cpuTicks, descendantsOf, parseCpuList, parseLoadavg, parseProcStat, parseProcStatCpu, parseProcStatus, processTree, readProcMemory, readProcStat, rssBytes } from '../../harness/proc.js'

// Fields 1-17 of a real line, the rest cut short; the command name holds spaces and parentheses.
const STAT = '4242 (node (worker) 1) S 4200 4242 4200 0 -1 4194560 9000 0 0 0 1234 567 89 10 20 0 11 0 600 1000000 20000 18446744073709551615'

test('stat: fields counted from the last parenthesis, so odd command names parse', () => {
  const s = parseProcStat(STAT)
  assert.equal(s.pid, 4242)
  assert.equal(s.comm, 'node (worker) 1')
  assert.equal(s.state, 'S')
  assert.equal(s.ppid, 4200)
  assert.equal(s.utime, 1234)
  assert.equal(s.stime, 567)
  assert.equal(s.cutime, 89)
  assert.equal(s.cstime, 10)
  assert.throws(() => parseProcStat('garbage'), /not a \/proc/)
  assert.throws(() => parseProcStat('1 (x) S 0 1'), /field/)
})

test('status: VmRSS and VmHWM in bytes; a process without them (a zombie) throws', () => {
  const text = 'Name:\tnginx\nVmPeak:\t  20000 kB\nVmHWM:\t   15360 kB\nVmRSS:\t   14336 kB\nThreads:\t1\n'
  assert.deepEqual(parseProcStatus(text), { rss: 14336 * 1024, hwm: 15360 * 1024 })
  assert.throws(() => parseProcStatus('Name:\tzombie\nState:\tZ (zombie)\n'), /VmRSS/)
})

test('loadavg and the aggregate cpu line', () => {
  assert.deepEqual(parseLoadavg('0.42 1.10 2.00 3/300 12345\n'), { one: 0.42, five: 1.1, fifteen: 2 })
  assert.throws(() => parseLoadavg('x y z'), /loadavg/)
  const stat = 'cpu  100 5 50 1000 20 3 7 11 0 0\ncpu0 50 2 25 500 10 1 3 5 0 0\nintr 1 2 3\n'
  assert.deepEqual(parseProcStatCpu(stat), { process: 155, interrupts: 10, idle: 1020, steal: 11 })
  assert.throws(() => parseProcStatCpu('intr 1\n'), /cpu line/)
})

test('descendants: children, grandchildren, nothing else', () => {
  const stat = (pid: number, ppid: number): ReturnType<typeof parseProcStat> => ({ pid, ppid, comm: 'x', state: 'S', utime: 0, stime: 0, cutime: 0, cstime: 0 })
  const all = [stat(1, 0), stat(10, 1), stat(11, 10), stat(12, 10), stat(13, 12), stat(20, 1)]
  assert.deepEqual(descendantsOf(10, all).sort(), [11, 12, 13])
  assert.deepEqual(descendantsOf(13, all), [])
})

test('the readers on this very process', () => {
  const self = readProcStat(process.pid)
  assert.equal(self?.pid, process.pid)
  assert.ok((readProcMemory(process.pid)?.rss ?? 0) > 1024 * 1024)
  assert.ok(rssBytes([process.pid]) > 0)
  assert.ok(cpuTicks([process.pid]) >= 0)
  const before = cpuNs([process.pid])
  let x = 0
  for (let i = 0; i < 2e7; i++) x = (x * 31 + i) | 0
  assert.ok(cpuNs([process.pid]) > before, 'every thread\'s CPU time, in ns, grows as this one works')
  assert.equal(cpuNs([2 ** 22 + 1]), 0)
  assert.ok(processTree(process.pid).includes(process.pid))
  assert.equal(readProcStat(2 ** 22 + 1), undefined, 'a pid that does not exist reads as gone')
  assert.equal(rssBytes([2 ** 22 + 1]), 0)
})

test('CPU lists: ranges and single CPUs; this process may run on at least one', () => {
  assert.deepEqual(parseCpuList('0-2,5\n'), [0, 1, 2, 5])
  assert.deepEqual(parseCpuList('3'), [3])
  assert.deepEqual(parseCpuList(''), [])
  assert.ok(allowedCpus().length >= 1)
})
