// `npm run bench`: the relay beside nginx (and HAProxy, and two Node.js reference relays), measured
// the same way on the same machine. Writes bench/RESULTS.md, bench/latency.svg and bench/results.json,
// prints a summary, and refuses (exit 1, nothing written) a run with any error. See bench/README.md.
import { execFileSync, spawnSync } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { cpus as osCpus, release, tmpdir, totalmem } from 'node:os'
import { join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { download, openIdleConnections, runTokenStreams, timeSseStream, upload } from './lib/clients.js'
import { USAGE, parseOptions, type BenchOptions } from './lib/options.js'
import { allowedCpus, cpuNs, cpuTicks, hwmBytes, readCpuTimes, readLoadavg, readProcStat, resetPeakRss, rssBytes } from '../harness/proc.js'
import { ProcessRegistry, ensureFdLimit, has, httpGet } from './lib/processes.js'
import { LogCollector } from '../harness/log-lines.js'
import { onExit } from '../harness/process-group.js'
import { isNoisy, renderMarkdown, renderStdout } from './lib/report.js'
import { evaluateStreamTargets, evaluateTargets, lostEvents, size, summarise, summariseStreams, type IdleRun, type Results, type SseRun, type StreamRun, type SystemRecord, type ThroughputRun, type TransferRun, type WorkersRun } from './lib/results.js'
import { delayPercentiles, median, rotate } from './lib/stats.js'
import { latencySvg } from './lib/svg.js'
import { JSON_BODY, REQUEST_SYSTEMS, STREAM_SYSTEMS, SYSTEM_DESCRIPTIONS, compileServers, SYSTEM_LABELS, startSystem, startUpstreams, type Phase, type RunningSystem, type StartContext, type SystemId, type Upstreams } from './lib/systems.js'
import { WRK_REPORT_LUA, parseWrkOutput, wrkArgs } from './lib/wrk.js'

const ROOT = fileURLToPath(new URL('..', import.meta.url))
/** A fixed amount of arithmetic, best of five, in ms: the same on an idle CPU from run to run. */
const PROBE = 'let best = Infinity; for (let r = 0; r < 5; r++) { const t = process.hrtime.bigint(); let x = 0; for (let i = 0; i < 2e7; i++) x = (x * 31 + i) | 0; best = Math.min(best, Number(process.hrtime.bigint() - t) / 1e6); if (x === 42) console.log() } console.log(best.toFixed(2))'
const started = performance.now()
const WARMUP_MAX_RUNS = 10
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))
const log = (message: string): void => { process.stderr.write(`[bench ${((performance.now() - started) / 1000).toFixed(0).padStart(3)} s] ${message}\n`) }

function output (cmd: string, args: string[]): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8', cwd: ROOT })
  return `${r.stdout ?? ''}${r.stderr ?? ''}`.trim()
}

function resolveNode (choice: string): string {
  if (choice === 'system') return process.execPath
  if (choice !== 'node24') return resolve(choice)
  const r = spawnSync('bash', [join(ROOT, 'scripts/node24')], { encoding: 'utf8', cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] })
  if (r.status !== 0) throw new Error('cannot get Node.js 24 through scripts/node24 (it needs the npm registry once); use --node=system or --node=/path/to/node')
  const dir = r.stdout.trim()
  return dir === '' ? 'node' : join(dir, 'node') // empty: the node on PATH is already 24+
}

function machine (): Results['meta']['machine'] {
  const cpuinfo = readFileSync('/proc/cpuinfo', 'utf8')
  return {
    cpuModel: /^model name\s*:\s*(.+)$/m.exec(cpuinfo)?.[1]?.trim() ?? osCpus()[0]?.model ?? 'unknown',
    cores: osCpus().length,
    kernel: release(),
    memoryBytes: totalmem(),
    virtualised: /^flags\s*:.*\bhypervisor\b/m.test(cpuinfo)
  }
}

function packageVersion (name: string): string {
  try {
    return (JSON.parse(readFileSync(join(ROOT, 'node_modules', name, 'package.json'), 'utf8')) as { version: string }).version
  } catch {
    return '?'
  }
}

function versions (relayNode: string, systems: readonly SystemId[]): Record<string, string> {
  const commit = output('git', ['rev-parse', '--short=12', 'HEAD'])
  const dirty = output('git', ['status', '--porcelain', '--', 'src', 'package.json', 'package-lock.json']) !== ''
  const v: Record<string, string> = {
    relay: `${commit}${dirty ? ' (with uncommitted changes in src/ or the lockfile)' : ''} on branch ${output('git', ['rev-parse', '--abbrev-ref', 'HEAD'])}, src/ last changed in ${output('git', ['log', '-1', '--format=%h %s', '--', 'src']).slice(0, 90)}`,
    'Node.js (relay and Node.js rows)': output(relayNode, ['-v']),
    'Node.js (harness)': process.version,
    nginx: output('nginx', ['-v']).replace(/^nginx version: /, ''),
    wrk: output('wrk', ['-v']).split('\n')[0]?.replace(/^wrk /, '').replace(/ Copyright.*$/, '') ?? '?'
  }
  if (systems.includes('haproxy')) v.haproxy = /version (\S+)/.exec(output('haproxy', ['-v']))?.[1] ?? '?'
  if (systems.includes('caddy')) v.caddy = output('caddy', ['version']).split(' ')[0] ?? '?'
  for (const name of ['fastify', '@fastify/http-proxy', '@fastify/reply-from', 'undici', 'pino', 'prom-client']) v[name] = packageVersion(name)
  return v
}

interface Cpus { proxy: string | undefined, generator: string | undefined, note: string }

function planCpus (options: BenchOptions, allowed: number[]): Cpus {
  if (!options.pin) return { proxy: undefined, generator: undefined, note: 'none (--no-pin): every process on any CPU' }
  if (!has('taskset')) return { proxy: undefined, generator: undefined, note: 'none: taskset is missing (Debian: util-linux)' }
  if (allowed.length < 2) return { proxy: undefined, generator: undefined, note: `none: only ${allowed.length} CPU available` }
  const proxy = String(allowed[0])
  const generator = allowed.slice(1).join(',')
  return { proxy, generator, note: `the system under test on CPU ${proxy}; wrk, the upstreams and the harness (SSE, token-stream, transfer and idle-connection clients) on CPU ${generator}` }
}

class Bench {
  readonly options: BenchOptions
  readonly registry: ProcessRegistry
  readonly ctx: StartContext
  readonly cpus: Cpus
  readonly clockTicks: number
  readonly luaScript: string
  readonly commands: string[] = []
  readonly configs = new Map<string, string>()
  upstreams!: Upstreams
  readonly results: Omit<Results, 'meta'> = { systems: [], throughput: [], sse: [], transfers: [], idle: [], workers: [], streams: [] }
  readonly loadSamples: Array<{ when: string, one: number }> = []
  readonly speedProbes: Array<{ when: string, ms: number }> = []
  readonly warmups: string[] = []
  relayRequestsSent = 0

  constructor (options: BenchOptions, dir: string, ctx: StartContext, cpus: Cpus) {
    this.options = options
    this.registry = ctx.registry
    this.ctx = ctx
    this.cpus = cpus
    this.clockTicks = Number(output('getconf', ['CLK_TCK'])) || 100
    this.luaScript = join(dir, 'report.lua')
    writeFileSync(this.luaScript, WRK_REPORT_LUA)
  }

  /**
   * The load average, and how long a fixed piece of work takes on the system under test's CPU: a
   * virtual machine whose host is busy (some report no steal time) shows it only as a slower CPU.
   */
  sampleLoad (when: string): void {
    this.loadSamples.push({ when, one: readLoadavg().one })
    const args = ['-e', PROBE]
    const r = this.cpus.proxy === undefined
      ? spawnSync(this.ctx.node, args, { encoding: 'utf8' })
      : spawnSync('taskset', ['-c', this.cpus.proxy, this.ctx.node, ...args], { encoding: 'utf8' })
    const ms = Number(r.stdout.trim())
    if (r.status === 0 && Number.isFinite(ms)) this.speedProbes.push({ when, ms })
  }

  async startAll (phase: Phase, ids = this.options.systems.filter((id) => REQUEST_SYSTEMS.includes(id)), what = `phase ${phase === 'json' ? 1 : 2}`, ctx = this.ctx): Promise<RunningSystem[]> {
    const running: RunningSystem[] = []
    for (const id of ids) {
      const system = await startSystem(id, phase, this.upstreams.ports, ctx)
      running.push(system)
      if (!this.commands.includes(system.command)) this.commands.push(`# ${SYSTEM_LABELS[id]}, ${what}${this.cpus.proxy === undefined ? '' : ` (pinned: taskset -c ${this.cpus.proxy})`}`, system.command)
      if (system.config !== undefined) this.configs.set(system.config.name, system.config.text)
      const answer = await httpGet(`${system.url}/json`)
      if (answer.status !== 200 || answer.body !== JSON_BODY) throw new Error(`${id} answered GET /json with ${answer.status} ${answer.body.slice(0, 200)}`)
    }
    return running
  }

  /** Each system's RSS a second after its start, before any request (phase 1's, or phase 2's without it). */
  async recordIdle (systems: RunningSystem[]): Promise<void> {
    await sleep(1000)
    for (const s of systems) {
      const pids = s.pids()
      const record: SystemRecord = { id: s.id, label: SYSTEM_LABELS[s.id], description: SYSTEM_DESCRIPTIONS[s.id], idleRssBytes: rssBytes(pids), processes: pids.length }
      this.results.systems.push(record)
    }
  }

  async stopAll (systems: RunningSystem[]): Promise<void> {
    await Promise.all(systems.map((s) => this.registry.stop(s.managed)))
  }

  async wrk (system: RunningSystem, connections: number, seconds: number, generatorCpus = this.cpus.generator): Promise<{ run: ReturnType<typeof parseWrkOutput>, command: string, cpuUs: number, rssMax: number, generatorCores: number, foreignCores: number }> {
    const pids = system.pids()
    const generatorPids = this.upstreams.pids()
    const self = (): { own: number, children: number } => {
      const s = readProcStat(process.pid)
      return s === undefined ? { own: 0, children: 0 } : { own: s.utime + s.stime, children: s.cutime + s.cstime }
    }
    let rssMax = rssBytes(pids)
    const sampler = setInterval(() => { rssMax = Math.max(rssMax, rssBytes(pids)) }, 100)
    const before = { sut: cpuTicks(pids), gen: cpuTicks(generatorPids), self: self(), machine: readCpuTimes(), at: performance.now() }
    const args = wrkArgs({ url: `${system.url}/json`, connections, durationSeconds: seconds, script: this.luaScript })
    let result: Awaited<ReturnType<ProcessRegistry['run']>>
    try {
      result = await this.registry.run(`wrk-${system.id}-${connections}`, 'wrk', args, { cpus: generatorCpus })
    } finally {
      clearInterval(sampler)
    }
    const after = { sut: cpuTicks(pids), gen: cpuTicks(generatorPids), self: self(), machine: readCpuTimes(), at: performance.now() }
    if (result.code !== 0) throw new Error(`wrk exited with ${result.code}: ${result.stderr}\n${result.stdout}`)
    let run
    try {
      run = parseWrkOutput(result.stdout)
    } catch (err) {
      throw new Error(`${SYSTEM_LABELS[system.id]} at ${connections} connections: ${(err as Error).message}`)
    }
    if (system.id === 'relay' || system.id === 'relay-2w') this.relayRequestsSent += run.requests
    const ticks = (t: number): number => t / this.clockTicks
    const elapsed = (after.at - before.at) / 1000
    // wrk is a child this process waits for: its CPU lands in our cutime/cstime when it is reaped.
    const wrkTicks = after.self.children - before.self.children
    const ours = (after.sut - before.sut) + (after.gen - before.gen) + (after.self.own - before.self.own) + wrkTicks
    const machineTicks = (after.machine.process - before.machine.process) + (after.machine.steal - before.machine.steal)
    return {
      run,
      command: result.commandLine,
      cpuUs: ticks(after.sut - before.sut) * 1e6 / run.requests,
      rssMax,
      generatorCores: ticks((after.gen - before.gen) + wrkTicks) / elapsed,
      foreignCores: Math.max(0, ticks(machineTicks - ours) / elapsed)
    }
  }

  /**
   * Node.js systems take seconds of load before the JIT has settled (the relay's first 2 s cost
   * 2-5x its steady CPU per request): 1 s runs until two in a row agree within 10 %, at most 10.
   */
  async warmUp (system: RunningSystem, connections: number, generatorCpus = this.cpus.generator): Promise<string> {
    let previous = NaN
    let runs = 0
    let settled = false
    while (runs < WARMUP_MAX_RUNS && !settled) {
      const { cpuUs } = await this.wrk(system, connections, 1, generatorCpus)
      runs++
      settled = Math.abs(cpuUs - previous) / previous < 0.1
      previous = cpuUs
    }
    return `${SYSTEM_LABELS[system.id]} ${runs} s${settled ? '' : ' (still moving)'}`
  }

  async throughput (systems: RunningSystem[]): Promise<void> {
    const { rounds, connections, durationSeconds, latencyDurationSeconds } = this.options
    const top = Math.max(...connections)
    const seconds = (c: number): number => c === top ? durationSeconds : latencyDurationSeconds
    for (const system of systems) this.warmups.push(await this.warmUp(system, top))
    log(`warm-up at ${top} connections, until CPU per request settles: ${this.warmups.join(', ')}`)
    this.sampleLoad('after warm-up')
    const shown = new Set<string>()
    for (let round = 1; round <= rounds; round++) {
      log(`throughput round ${round}/${rounds}: ${connections.map((c) => `${c} connections × ${seconds(c)} s`).join(', ')}, × ${systems.length} systems`)
      for (const c of connections) {
        for (const system of rotate(systems, round - 1)) {
          const m = await this.wrk(system, c, seconds(c))
          const key = `${system.id}/${c}`
          if (!shown.has(key)) {
            shown.add(key)
            this.commands.push(`${m.command}  # ${SYSTEM_LABELS[system.id]}`)
          }
          const l = m.run.latencyUs
          const run: ThroughputRun = {
            system: system.id,
            round,
            connections: c,
            requests: m.run.requests,
            seconds: m.run.durationSeconds,
            requestsPerSecond: m.run.requestsPerSecond,
            cpuUsPerRequest: m.cpuUs,
            latencyMs: { p50: l.p50 / 1000, p90: l.p90 / 1000, p99: l.p99 / 1000, max: l.max / 1000 },
            rssMaxBytes: m.rssMax,
            generatorCores: m.generatorCores,
            foreignCores: m.foreignCores,
            command: m.command
          }
          this.results.throughput.push(run)
        }
      }
      this.sampleLoad(`after round ${round}`)
    }
  }

  async idleConnections (systems: RunningSystem[]): Promise<void> {
    const n = this.options.idleConnections
    for (const system of systems) {
      log(`idle connections: ${n} to ${system.id}`)
      const pids = system.pids()
      await sleep(500)
      const rssBefore = rssBytes(pids)
      const conns = await openIdleConnections(Number(new URL(system.url).port), '/json', n)
      if (system.id === 'relay') this.relayRequestsSent += n
      await sleep(1000)
      const rssAfter = rssBytes(pids)
      const closed = conns.closed()
      conns.close()
      if (closed > 0) throw new Error(`${system.id} closed ${closed} of ${n} idle keep-alive connections within a second`)
      const run: IdleRun = { system: system.id, connections: n, rssBeforeBytes: rssBefore, rssAfterBytes: rssAfter }
      this.results.idle.push(run)
      await sleep(200)
    }
  }

  async sse (systems: RunningSystem[]): Promise<void> {
    const { rounds, sseStreamsPerRound, sseEvents, sseIntervalMs } = this.options
    const targets: Array<{ id: SystemId | 'direct', url: string }> = [
      ...systems.map((s) => ({ id: s.id, url: s.url })),
      { id: 'direct', url: `http://127.0.0.1:${this.upstreams.ports.stream}` }
    ]
    log(`SSE: warm-up, then ${rounds} rounds × ${targets.length} targets × ${sseStreamsPerRound} streams of ${sseEvents} events ${sseIntervalMs} ms apart`)
    for (const t of targets) await timeSseStream(t.url, 3, sseIntervalMs)
    for (let round = 1; round <= rounds; round++) {
      for (const t of rotate(targets, round - 1)) {
        for (let i = 0; i < sseStreamsPerRound; i++) {
          const timing = await timeSseStream(t.url, sseEvents, sseIntervalMs)
          const run: SseRun = { system: t.id, round, firstEventMs: timing.firstEventMs, eventDelaysMs: timing.eventDelaysMs }
          this.results.sse.push(run)
        }
      }
    }
  }

  /**
   * The streaming scenario: every system started afresh each round, warmed up, its idle RSS read,
   * then each stream count in rising order (what a smaller run left in a heap is less than the next
   * one needs), the systems and the no-proxy row alternating.
   */
  async streams (): Promise<void> {
    const { rounds, streamCounts, streamEvents, streamRate } = this.options
    const ids = this.options.systems.filter((id) => STREAM_SYSTEMS.includes(id))
    const intervalMs = 1000 / streamRate
    const direct = { id: 'direct' as const, url: `http://127.0.0.1:${this.upstreams.ports.stream}`, pids: () => [] }
    log(`streams: ${rounds} round(s) × ${streamCounts.join(', ')} concurrent streams × ${ids.length} systems and no proxy; ${streamRate} events/s per stream, ${streamEvents} while all are open`)
    for (let round = 1; round <= rounds; round++) {
      const systems = await this.startAll('stream', ids, 'streams (started afresh each round)', { ...this.ctx, bodyLimitBytes: undefined })
      // The per-event code made hot (4000 events each) by few streams, which leave little in memory
      // before the idle RSS is read: the first count's streams must not find their memory already there.
      await Promise.all(systems.map(async (s) => await runTokenStreams({ url: s.url, streams: 10, intervalMs: 5, windowMs: 2000, run: `warm-${round}-${s.id}-${Date.now()}` })))
      if (ids.includes('relay')) this.relayRequestsSent += 10
      await sleep(1000)
      const idle = new Map(systems.map((s) => [s.id, rssBytes(s.pids())]))
      for (const n of streamCounts) {
        for (const t of rotate([...systems, direct], round - 1)) {
          const r = await this.streamRun(t, n, round, t.id === 'direct' ? undefined : idle.get(t.id), intervalMs, streamEvents * intervalMs)
          this.results.streams.push(r)
          if (t.id === 'relay') this.relayRequestsSent += n
          log(`streams round ${round}, ${n} through ${t.id}: open in ${r.openSeconds.toFixed(1)} s, ${r.cpuUsPerEvent?.toFixed(1) ?? '—'} µs/event, added delay p50 ${r.delayMs.p50.toFixed(2)} / p99 ${r.delayMs.p99.toFixed(2)} ms, ${lostEvents(r)} lost, generator ${r.generatorCores.toFixed(2)} cores`)
          await sleep(300)
        }
      }
      await this.stopAll(systems)
      this.sampleLoad(`after streams round ${round}`)
    }
  }

  /** One streaming run: the system's CPU, the generator's and the machine's over the window, RSS sampled in it. */
  async streamRun (target: { id: SystemId | 'direct', url: string, pids: () => number[] }, streams: number, round: number, idleRssBytes: number | undefined, intervalMs: number, windowMs: number): Promise<StreamRun> {
    const pids = target.pids()
    const generator = this.upstreams.pids()
    const snapshot = (): { sut: number, gen: number, self: number, machine: ReturnType<typeof readCpuTimes>, at: number } => {
      const self = process.cpuUsage()
      return { sut: cpuNs(pids), gen: cpuNs(generator), self: (self.user + self.system) * 1000, machine: readCpuTimes(), at: performance.now() }
    }
    let before: ReturnType<typeof snapshot> | undefined
    let after: ReturnType<typeof snapshot> | undefined
    const rss: number[] = []
    let sampler: NodeJS.Timeout | undefined
    const run = `r${round}-${target.id}-${streams}-${Date.now()}`
    let result: Awaited<ReturnType<typeof runTokenStreams>>
    try {
      result = await runTokenStreams({
        url: target.url,
        streams,
        intervalMs,
        windowMs,
        run,
        onWindowStart: () => {
          before = snapshot()
          if (pids.length > 0) sampler = setInterval(() => rss.push(rssBytes(pids)), 250)
        },
        onWindowEnd: () => {
          after = snapshot()
          clearInterval(sampler)
        }
      })
    } finally {
      clearInterval(sampler)
    }
    const stats = JSON.parse((await httpGet(`http://127.0.0.1:${this.upstreams.ports.stream}/tokens/stats?run=${encodeURIComponent(run)}`)).body) as { sent?: number, unsent?: number }
    if (before === undefined || after === undefined || stats.sent === undefined) throw new Error(`${streams} streams through ${target.id}: no window (${result.cut} streams cut short)`)
    const seconds = (after.at - before.at) / 1000
    const events = result.windowDelaysUs.length
    const delays = delayPercentiles(result.windowDelaysUs)
    const generatorNs = (after.gen - before.gen) + (after.self - before.self)
    const machineNs = ((after.machine.process - before.machine.process) + (after.machine.steal - before.machine.steal)) / this.clockTicks * 1e9
    return {
      system: target.id,
      label: target.id === 'direct' ? '(no proxy: client → upstream)' : SYSTEM_LABELS[target.id],
      round,
      streams,
      openSeconds: result.openMs / 1000,
      windowEvents: events,
      windowSeconds: seconds,
      cpuUsPerEvent: pids.length === 0 ? undefined : (after.sut - before.sut) / 1000 / events,
      delayMs: { p50: delays.p50 / 1000, p99: delays.p99 / 1000, max: delays.max / 1000 },
      sent: stats.sent,
      received: result.received,
      unsent: stats.unsent ?? 0,
      outOfOrder: result.outOfOrder,
      cut: result.cut,
      idleRssBytes,
      openRssBytes: rss.length === 0 ? undefined : median(rss),
      generatorCores: generatorNs / 1e9 / seconds,
      foreignCores: Math.max(0, (machineNs - generatorNs - (after.sut - before.sut)) / 1e9 / seconds)
    }
  }

  async transfers (systems: RunningSystem[]): Promise<void> {
    const bytes = this.options.transferBytes
    for (const system of systems) {
      for (const direction of ['upload', 'download'] as const) {
        log(`${direction}: ${size(bytes)} through ${system.id}`)
        const pids = system.pids()
        await sleep(300)
        const baseline = rssBytes(pids)
        const hwmReset = resetPeakRss(pids)
        // The highest RSS seen in each quarter of the bytes: a bounded sawtooth (garbage awaiting the
        // collector) peaks alike in every quarter, memory that grows with size does not.
        const quarters = [baseline, 0, 0, 0]
        let transferred = 0
        const sample = (): void => {
          const q = Math.min(3, Math.floor((transferred / bytes) * 4))
          quarters[q] = Math.max(quarters[q] as number, rssBytes(pids))
        }
        const sampler = setInterval(sample, 25)
        let lastQuarter = 0
        const onBytes = (n: number): void => {
          transferred = n
          const q = Math.min(3, Math.floor((n / bytes) * 4))
          if (q !== lastQuarter) {
            lastQuarter = q
            sample()
          }
        }
        let seconds: number
        try {
          seconds = direction === 'upload' ? await upload(system.url, bytes, { onBytes }) : await download(system.url, bytes, { onBytes })
        } finally {
          clearInterval(sampler)
        }
        transferred = bytes
        sample()
        const sampled = Math.max(...quarters)
        const peak = hwmReset ? Math.max(hwmBytes(pids), sampled) : sampled
        const run: TransferRun = {
          system: system.id,
          direction,
          bytes,
          seconds,
          baselineRssBytes: baseline,
          peakGrowthBytes: peak - baseline,
          peakMethod: hwmReset ? 'VmHWM' : 'sampled',
          quarterMaxRssBytes: quarters
        }
        this.results.transfers.push(run)
      }
    }
  }

  async workers (workersCpus: string | undefined, generatorCpus: string | undefined): Promise<void> {
    const ctx: StartContext = { ...this.ctx, proxyCpus: workersCpus }
    const c = Math.max(...this.options.connections)
    const one = await startSystem('relay', 'json', this.upstreams.ports, ctx)
    const two = await startSystem('relay-2w', 'json', this.upstreams.ports, ctx)
    this.commands.push('# RELAY_WORKERS=1 and =2, for the workers target', one.command, two.command)
    try {
      for (const s of [one, two]) this.warmups.push(await this.warmUp(s, c, generatorCpus))
      for (let round = 1; round <= this.options.rounds; round++) {
        log(`workers round ${round}/${this.options.rounds}`)
        for (const s of rotate([one, two], round - 1)) {
          const m = await this.wrk(s, c, this.options.durationSeconds, generatorCpus)
          const run: WorkersRun = { round, workers: s.id === 'relay' ? 1 : 2, connections: c, requestsPerSecond: m.run.requestsPerSecond, cpus: workersCpus ?? 'any' }
          this.results.workers.push(run)
        }
      }
    } finally {
      await this.stopAll([one, two])
    }
  }

  /** Every line the relay logged: no error, and one completed line per request answered. */
  checkRelayLogs (): string[] {
    const notes: string[] = []
    let completed = 0
    for (const file of this.ctx.relayLogs) {
      const logs = new LogCollector({ strict: false })
      logs.write(readFileSync(file, 'utf8') + '\n') // a last line cut short is checked too
      if (logs.notJson.length > 0) throw new Error(`the relay wrote a line that is not JSON to stdout (${file}): ${(logs.notJson[0] as string).slice(0, 200)}`)
      for (const entry of logs.lines) {
        const line = (): string => JSON.stringify(entry).slice(0, 500)
        if (entry.level === 'error' || entry.level === 'fatal') throw new Error(`refusing this run: the relay logged an error (${file}): ${line()}`)
        if (entry.msg === 'request completed') {
          completed++
          const status = entry.statusCode as number | undefined
          if (status === undefined || status < 200 || status > 299) throw new Error(`refusing this run: the relay answered ${status}: ${line()}`)
        }
      }
    }
    if (completed < this.relayRequestsSent) throw new Error(`the relay logged ${completed} completed requests, fewer than the ${this.relayRequestsSent} answered: is request logging off?`)
    notes.push(`The relay logged ${completed.toLocaleString('en-US')} request lines at INFO (each checked: JSON, status 2xx, no error line) for the ${this.relayRequestsSent.toLocaleString('en-US')} requests wrk and the clients counted (wrk stops counting at the end of its duration, the relay logs the requests in flight too).`)
    return notes
  }
}

async function main (): Promise<void> {
  const allowed = allowedCpus()
  const options = parseOptions(process.argv.slice(2), {
    env: process.env,
    cores: allowed.length,
    installed: (id) => (id !== 'haproxy' && id !== 'caddy') || has(id)
  })
  if (options.help) {
    process.stdout.write(USAGE)
    return
  }
  const missing = ['nginx', 'wrk'].filter((c) => !has(c))
  if (missing.length > 0) {
    throw new Error(`${missing.join(' and ')} ${missing.length > 1 ? 'are' : 'is'} missing. On Debian or Ubuntu: sudo apt-get install ${missing.join(' ')} haproxy (haproxy is optional); on Fedora: sudo dnf install ${missing.join(' ')} haproxy; on macOS this benchmark does not run (it reads Linux /proc).`)
  }
  if (!existsSync(join(ROOT, 'dist/server.js'))) throw new Error('dist/server.js is missing: run `npm run build` first (`npm run bench` does)')
  const fdLimit = ensureFdLimit(Math.max(4096, options.idleConnections * 3 + 1024, Math.max(...options.streamCounts) * 3 + 1024), log)

  if (options.waitQuietSeconds > 0) {
    const deadline = Date.now() + options.waitQuietSeconds * 1000
    while (readLoadavg().one >= options.maxLoad && Date.now() < deadline) {
      log(`waiting for a quiet machine: 1-minute load ${readLoadavg().one.toFixed(2)} ≥ ${options.maxLoad}`)
      await sleep(10_000)
    }
  }
  const loadBefore = readLoadavg().one
  if (loadBefore >= options.maxLoad) log(`WARNING: 1-minute load average ${loadBefore.toFixed(2)} ≥ ${options.maxLoad}: this run will be marked noisy`)

  const node = resolveNode(options.node)
  const nodeVersion = output(node, ['-v'])
  const cpus = planCpus(options, allowed)
  // The harness is a load generator too (SSE, transfers, idle connections): on the generator's CPUs.
  if (cpus.generator !== undefined) execFileSync('taskset', ['-apc', cpus.generator, String(process.pid)], { stdio: 'ignore' })

  const dir = mkdtempSync(join(tmpdir(), 'tokenplace-bench-'))
  const registry = new ProcessRegistry(dir)
  // On an interrupted run harness/process-group.ts ends the processes; the folder goes too.
  const forget = onExit(() => {
    log('stopping what this run started')
    if (!options.keepTemp) rmSync(dir, { recursive: true, force: true })
  })

  const ctx: StartContext = {
    registry,
    dir,
    proxyCpus: cpus.proxy,
    node,
    servers: compileServers(ROOT),
    root: ROOT,
    bodyLimitBytes: Math.max(options.transferBytes * 2, 10 * 2 ** 20),
    fdLimit,
    relayLogs: []
  }
  const bench = new Bench(options, dir, ctx, cpus)
  bench.sampleLoad('start')
  log(`systems: ${options.systems.join(', ')}; scenarios: ${options.scenarios.join(', ')}; Node.js ${nodeVersion} for the relay; temp ${dir}`)
  let results: Results
  try {
    bench.upstreams = await startUpstreams(ctx, cpus.generator)
    bench.commands.push(`# upstreams${cpus.generator === undefined ? '' : ` (pinned: taskset -c ${cpus.generator})`}`, ...bench.upstreams.commands)
    bench.configs.set(bench.upstreams.config.name, bench.upstreams.config.text)

    const wants = (s: string): boolean => options.scenarios.includes(s as BenchOptions['scenarios'][number])
    // Phase 1: small JSON from nginx.
    if (wants('throughput') || wants('idle')) {
      log('phase 1: starting the systems in front of nginx (/json)')
      const systems = await bench.startAll('json')
      await bench.recordIdle(systems)
      if (wants('throughput')) await bench.throughput(systems)
      if (wants('idle')) await bench.idleConnections(systems)
      await bench.stopAll(systems)
    }
    // Phase 2: SSE and large bodies from the node upstream.
    if (wants('sse') || wants('transfer')) {
      log('phase 2: restarting the systems in front of the node upstream (SSE, large bodies)')
      const systems = await bench.startAll('stream')
      if (bench.results.systems.length === 0) await bench.recordIdle(systems)
      if (wants('sse')) await bench.sse(systems)
      bench.sampleLoad('after SSE')
      if (wants('transfer')) await bench.transfers(systems)
      await bench.stopAll(systems)
    }
    // Streams: the systems started afresh for each round, in front of the node upstream.
    if (wants('streams')) await bench.streams()
    let workersSkipped: string | undefined
    if (wants('workers')) {
      if (allowed.length >= 4 && cpus.proxy !== undefined) {
        await bench.workers(allowed.slice(0, 2).join(','), allowed.slice(2).join(','))
      } else {
        workersSkipped = `this machine has ${allowed.length} CPUs${cpus.proxy === undefined ? ' and no pinning' : ''}: two workers need two CPUs of their own and the load generator others (≥ 4); the numbers below ran with everything sharing the CPUs and cannot show the target`
        await bench.workers(undefined, undefined)
      }
    } else {
      workersSkipped = allowed.length >= 4
        ? 'the workers scenario was not selected'
        : `this machine has ${allowed.length} CPUs: RELAY_WORKERS=2 needs two CPUs of its own and the load generator others (≥ 4 in all); run \`npm run bench -- --scenarios=workers\` on such a machine`
    }
    bench.sampleLoad('end')
    const notes = wants('throughput') || wants('idle') || wants('streams') ? bench.checkRelayLogs() : []
    if (bench.warmups.length > 0) notes.push(`Before the first round each system was warmed up with 1 s wrk runs at ${Math.max(...options.connections)} connections until two in a row agreed on CPU per request within 10 % (at most ${WARMUP_MAX_RUNS} s): ${bench.warmups.join(', ')}.`)
    notes.push('RSS sums VmRSS over a system\'s processes, so pages nginx\'s master and worker share count twice (a few MB).')
    notes.push('The reference proxies (nginx, HAProxy) log nothing and the Node.js reference rows neither; the relay logs one JSON line per request (to a file here, to a pipe in Kubernetes), as it does in production.')
    notes.push(`The harness (Node.js ${process.version}) runs the SSE, transfer and idle-connection clients on the load generator's CPU; the relay and the Node.js rows run on ${nodeVersion}.`)
    results = {
      meta: {
        date: new Date().toISOString(),
        elapsedSeconds: (performance.now() - started) / 1000,
        machine: machine(),
        versions: versions(node, options.systems),
        pinning: { proxyCpus: cpus.proxy, generatorCpus: cpus.generator, note: cpus.note },
        load: { before: loadBefore, after: readLoadavg().one, samples: bench.loadSamples, speedProbes: bench.speedProbes },
        maxLoad: options.maxLoad,
        options: { ...options },
        // Paths relative to the repository, the run's temporary folder as $TMP: shorter, and the same from run to run.
        commands: [
          `npm run bench${process.argv.length > 2 ? ` -- ${process.argv.slice(2).join(' ')}` : ''}`,
          '# run from the repository; $TMP is the run\'s temporary folder (configs below)',
          ...bench.commands.map((c) => c.split(dir).join('$TMP').split(ROOT).join(''))
        ],
        configs: [...bench.configs].map(([name, text]) => ({ name, text: text.split(dir).join('$TMP') })),
        notes
      },
      ...bench.results,
      workersSkipped
    }
  } finally {
    await registry.stopAll()
  }
  forget()
  if (options.keepTemp) log(`kept ${dir}`)
  else rmSync(dir, { recursive: true, force: true })

  const summary = summarise(results)
  const targets = evaluateTargets(summary, results)
  const streamRows = summariseStreams(results.streams)
  const streams = { rows: streamRows, targets: streamRows.length > 0 ? evaluateStreamTargets(streamRows, summary) : [] }
  const out = resolve(ROOT, options.outDir)
  mkdirSync(out, { recursive: true })
  writeFileSync(join(out, 'RESULTS.md'), renderMarkdown(results, summary, targets, streams))
  const subtitle = `${isNoisy(results, summary).noisy ? 'NOISY RUN — ' : ''}${results.meta.machine.cpuModel}, ${results.meta.date.slice(0, 10)}; medians over ${options.rounds} rounds; ${cpus.proxy === undefined ? 'not pinned' : 'proxy pinned to one core'}`
  if (results.throughput.length > 0) {
    const series = summary.systems.map((s) => ({
      label: s.label,
      emphasis: s.id === 'relay',
      points: Object.keys(s.p99Ms).map(Number).map((c) => ({ connections: c, p50Ms: s.p50Ms[c] as number, p99Ms: s.p99Ms[c] as number }))
    }))
    writeFileSync(join(out, 'latency.svg'), latencySvg(series, { title: 'Latency against load: small JSON through each proxy', subtitle }))
  }
  if (streamRows.length > 0) {
    const series = [...new Set(streamRows.map((r) => r.system))].map((id) => ({
      label: (streamRows.find((r) => r.system === id) as typeof streamRows[number]).label,
      emphasis: id === 'relay',
      points: streamRows.filter((r) => r.system === id).map((r) => ({ connections: r.streams, p50Ms: r.p50Ms, p99Ms: r.p99Ms }))
    }))
    writeFileSync(join(out, 'streams.svg'), latencySvg(series, {
      title: `Added delay against concurrent token streams (${options.streamRate} events/s each)`,
      subtitle,
      xLabel: 'concurrent SSE streams',
      yLabel: 'added delay per event, ms (log scale)'
    }))
  }
  writeFileSync(join(out, 'results.json'), JSON.stringify({ ...results, summary, targets, streamRows, streamTargets: streams.targets }, null, 1) + '\n')
  process.stdout.write(renderStdout(results, summary, targets, streams) + '\n')
  log(`wrote ${join(out, 'RESULTS.md')}, its plots and results.json in ${Math.round((performance.now() - started) / 1000)} s`)
}

main().catch((err: unknown) => {
  process.stderr.write(`\nbench: ${err instanceof Error ? err.message : String(err)}\nNo results were written.\n`)
  process.exitCode = 1
})
