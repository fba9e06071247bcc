// `npm run bench:pi`: the relay's container image under the chart's default limits (podman --cpus 0.5
// --memory 512m), with RELAY_WORKERS 1, 2 and 3: small requests from nginx on loopback (wrk), then
// the most concurrent token streams each carries. Writes bench/PI.md and bench/pi.json; the README's
// "Performance" section quotes the findings. Starts only containers labelled with this run's id and
// its own upstreams, and removes exactly those on any exit.
import { execFileSync, spawnSync } from 'node:child_process'
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { cpus as osCpus, tmpdir } from 'node:os'
import { join, relative, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { runTokenStreams } from './lib/clients.js'
import { PI_USAGE, judgeStreamStep, nextStreamCount, parsePiOptions, renderPiMarkdown, summarisePi, type PiRow, type PiRun, type PiStreamStep } from './lib/pi.js'
import { ProcessRegistry, ensureFdLimit, has, httpGet, waitForReadyLine } from './lib/processes.js'
import { CONTAINER_READY_TIMEOUT_MS, HARDENED, READ_ONLY } from '../harness/container.js'
import { freePort } from '../harness/ports.js'
import { onExit } from '../harness/process-group.js'
import { allowedCpus, cpuNs, processTree, rssBytes } from '../harness/proc.js'
import { waitFor } from '../harness/wait.js'
import { delayPercentiles, rotate } from './lib/stats.js'
import { METRICS_TOKEN, PRODUCTION_LIMITS, compileServers, startNginxUpstream } from './lib/systems.js'
import { WRK_REPORT_LUA, parseWrkOutput, wrkArgs } from './lib/wrk.js'

const ROOT = fileURLToPath(new URL('..', import.meta.url))
const BUILT_IMAGE = 'localhost/tokenplace-relay:bench'
const RUN_ID = `${Date.now()}-${process.pid}`
const LABEL = `tokenplace-relay.bench.run=${RUN_ID}`
const started = performance.now()
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))
const log = (message: string): void => { process.stderr.write(`[bench:pi ${((performance.now() - started) / 1000).toFixed(0).padStart(3)} s] ${message}\n`) }

function runc (): string {
  const found = spawnSync('sh', ['-c', 'command -v runc || { [ -x /usr/sbin/runc ] && echo /usr/sbin/runc; }'], { encoding: 'utf8' }).stdout.trim()
  if (found === '') throw new Error('runc is missing: apt-get install -y runc (crun fails on cgroup v1 machines)')
  return found
}

/** podman with this machine's needs: runc, and rlimits within the sandbox's hard limits. */
function podman (args: string[], options: { check?: boolean } = {}): string {
  const r = spawnSync('podman', ['--runtime', runc(), ...args], { encoding: 'utf8' })
  if ((options.check ?? true) && r.status !== 0) throw new Error(`podman ${args.join(' ')} failed (${r.status}):\n${r.stderr}`)
  return r.stdout.trim()
}

function hardLimit (flag: '-Hn' | '-Hu', cap: number): number {
  const text = execFileSync('bash', ['-c', `ulimit ${flag}`], { encoding: 'utf8' }).trim()
  return text === 'unlimited' ? cap : Math.min(cap, Number(text))
}

/**
 * The folder of the process's cgroup for a controller: cgroup v1 mounts each controller (or a
 * joined pair such as cpu,cpuacct) under its own folder, v2 has one unified tree.
 */
function cgroupDir (pid: number, controller: 'cpu' | 'cpuacct' | 'memory'): { dir: string, v2: boolean } {
  const lines = readFileSync(`/proc/${pid}/cgroup`, 'utf8').trim().split('\n').map((l) => l.split(':'))
  const v1 = lines.find(([, controllers]) => controllers?.split(',').includes(controller) === true)
  if (v1 !== undefined) return { dir: join('/sys/fs/cgroup', v1[1] as string, v1[2] as string), v2: false }
  return { dir: join('/sys/fs/cgroup', lines.find(([id]) => id === '0')?.[2] ?? ''), v2: true }
}

/** CPU time (ns) and CFS period counters of the container's cgroup, v1 or v2. */
function cgroupCpu (pid: number): { usageNs: number, periods: number, throttled: number } {
  const cpu = cgroupDir(pid, 'cpu')
  const stat = readFileSync(join(cpu.dir, 'cpu.stat'), 'utf8')
  const usageNs = cpu.v2
    ? Number(/usage_usec (\d+)/.exec(stat)?.[1]) * 1000
    : Number(readFileSync(join(cgroupDir(pid, 'cpuacct').dir, 'cpuacct.usage'), 'utf8'))
  return {
    usageNs,
    periods: Number(/nr_periods (\d+)/.exec(stat)?.[1] ?? 0),
    throttled: Number(/nr_throttled (\d+)/.exec(stat)?.[1] ?? 0)
  }
}

/**
 * The container's memory as its limit sees it: the cgroup's usage minus inactive page cache (what
 * Kubernetes calls the working set). Shared pages (node's code) count once, unlike summed RSS.
 */
function cgroupWorkingSet (pid: number): number {
  const { dir, v2 } = cgroupDir(pid, 'memory')
  const usage = Number(readFileSync(join(dir, v2 ? 'memory.current' : 'memory.usage_in_bytes'), 'utf8'))
  const inactive = new RegExp(`^${v2 ? '' : 'total_'}inactive_file (\\d+)$`, 'm').exec(readFileSync(join(dir, 'memory.stat'), 'utf8'))?.[1]
  return usage - Number(inactive ?? 0)
}

interface Container { workers: number, name: string, url: string, pid: number }

/** Refuses a run in which a container logged an error or answered other than 2xx (`allowed`: 499, and the load shedding's 503 in the stream search, where it fails a step). */
function checkLogs (c: Container, allowed: RegExp): void {
  const logs = podman(['logs', c.name], { check: false }).split('\n').filter((l) => l.startsWith('{'))
  const bad = logs.filter((l) => /"level":"(error|fatal)"/.test(l) || (/"statusCode":[45]\d\d/.test(l) && !allowed.test(l)))
  if (bad.length > 0) throw new Error(`RELAY_WORKERS=${c.workers} logged errors or non-2xx answers; refusing the run:\n${bad.slice(0, 5).join('\n')}`)
}

async function main (): Promise<void> {
  const options = parsePiOptions(process.argv.slice(2))
  if (options.help) {
    process.stdout.write(PI_USAGE)
    return
  }
  const wants = (s: 'requests' | 'streams'): boolean => options.scenarios.includes(s)
  const missing = ['podman', ...(wants('requests') ? ['nginx', 'wrk'] : [])].filter((c) => !has(c))
  if (missing.length > 0) throw new Error(`${missing.join(', ')} missing. On Debian or Ubuntu: sudo apt-get install ${missing.join(' ')} runc`)
  if (wants('streams')) ensureFdLimit(options.streamMax * 3 + 1024, log)

  const dir = mkdtempSync(join(tmpdir(), 'tokenplace-bench-pi-'))
  const registry = new ProcessRegistry(dir)
  const removeContainers = (): void => {
    const ids = podman(['ps', '-aq', '--filter', `label=${LABEL}`], { check: false })
    if (ids !== '') podman(['rm', '-f', '-t', '0', ...ids.split('\n')], { check: false })
  }
  // On a failed or interrupted run harness/process-group.ts ends nginx and wrk; these go too.
  const forget = onExit(() => {
    removeContainers()
    rmSync(dir, { recursive: true, force: true })
  })

  let image = options.image
  if (image === undefined) {
    log(`building ${BUILT_IMAGE} from the Containerfile (scripts/container-smoke.sh, build only)`)
    execFileSync('bash', ['scripts/container-smoke.sh'], { cwd: ROOT, stdio: ['ignore', 'inherit', 'inherit'], env: { ...process.env, SMOKE_IMAGE: BUILT_IMAGE, SMOKE_BUILD_ONLY: '1' } })
    image = BUILT_IMAGE
  }

  // The load generator, the upstreams and this harness (the stream client) on the last CPU, the
  // container on the others, its quota being the limit (as on a Pi's four cores, with the load
  // coming from elsewhere). A container free to run on the generator's CPU too was never throttled
  // where it failed: its stream delays were the generator's, waiting for that CPU, not the pod's.
  const cpus = allowedCpus()
  const generatorCpu = String(cpus.at(-1))
  const containerCpus = cpus.length > 1 ? cpus.slice(0, -1).join(',') : undefined
  if (has('taskset')) execFileSync('taskset', ['-apc', generatorCpu, String(process.pid)], { stdio: 'ignore' })
  const lua = join(dir, 'report.lua')
  writeFileSync(lua, WRK_REPORT_LUA)

  const nofile = hardLimit('-Hn', 1048576)
  const nproc = hardLimit('-Hu', 32768)
  const commands: string[] = []
  const startContainer = async (workers: number, upstreamPort: number, what: string): Promise<Container> => {
    const port = await freePort()
    const name = `tokenplace-bench-pi-${RUN_ID}-${what}-w${workers}`
    const args = ['run', '-d', '--name', name, '--label', LABEL, '--network', 'host',
      '--cpus', options.cpus, ...(containerCpus === undefined ? [] : ['--cpuset-cpus', containerCpus]),
      '--memory', options.memory, '--memory-swap', options.memory,
      '--ulimit', `nofile=${nofile}:${nofile}`, '--ulimit', `nproc=${nproc}:${nproc}`,
      ...READ_ONLY, ...HARDENED,
      '-e', 'RELAY_HOST=127.0.0.1', '-e', `RELAY_PORT=${port}`, '-e', `RELAY_WORKERS=${workers}`,
      '-e', `UPSTREAM_URL=http://127.0.0.1:${upstreamPort}`, '-e', `RELAY_METRICS_TOKEN=${METRICS_TOKEN}`,
      ...Object.entries(PRODUCTION_LIMITS).flatMap(([k, v]) => ['-e', `${k}=${v}`]), image as string]
    commands.push(`podman ${args.join(' ')}`)
    podman(args)
    const url = `http://127.0.0.1:${port}`
    await waitFor(async () => (await httpGet(`${url}/healthz`, 1000).catch(() => undefined))?.status === 200, CONTAINER_READY_TIMEOUT_MS,
      () => `${name} to be ready:\n${podman(['logs', '--tail', '20', name], { check: false })}`, 200)
    const pid = Number(podman(['inspect', '--format', '{{.State.Pid}}', name]))
    log(`RELAY_WORKERS=${workers} (${what}): ready on ${url} (pid ${pid})`)
    return { workers, name, url, pid }
  }

  let rows: PiRow[] = []
  const runs: PiRun[] = []
  const idleRss = new Map<number, number>()
  const idleWorkingSet = new Map<number, number>()
  if (wants('requests')) {
    const { port: upstreamPort } = await startNginxUpstream(registry, dir, generatorCpu)
    const containers: Container[] = []
    for (const workers of options.workers) containers.push(await startContainer(workers, upstreamPort, 'requests'))
    await sleep(2000)
    for (const c of containers) {
      idleRss.set(c.workers, rssBytes(processTree(c.pid)))
      idleWorkingSet.set(c.workers, cgroupWorkingSet(c.pid))
    }

    const wrk = async (c: Container, connections: number, seconds: number): Promise<{ run: ReturnType<typeof parseWrkOutput>, rssMax: number, workingSetMax: number, cpuNs: number, periods: number, throttled: number, command: string }> => {
      const pids = processTree(c.pid)
      let rssMax = rssBytes(pids)
      let workingSetMax = cgroupWorkingSet(c.pid)
      const sampler = setInterval(() => {
        rssMax = Math.max(rssMax, rssBytes(pids))
        workingSetMax = Math.max(workingSetMax, cgroupWorkingSet(c.pid))
      }, 100)
      const before = cgroupCpu(c.pid)
      const result = await registry.run(`wrk-w${c.workers}-c${connections}`, 'wrk', wrkArgs({ url: `${c.url}/json`, connections, durationSeconds: seconds, script: lua, timeoutSeconds: 5 }), { cpus: generatorCpu })
      clearInterval(sampler)
      const after = cgroupCpu(c.pid)
      return { run: parseWrkOutput(result.stdout), rssMax, workingSetMax, cpuNs: after.usageNs - before.usageNs, periods: after.periods - before.periods, throttled: after.throttled - before.throttled, command: result.commandLine }
    }

    // Under a 0.5 CPU quota the JIT takes a while: run until two 3 s runs agree within 10 %.
    for (const c of containers) {
      let previous = 0
      for (let i = 0; i < 8; i++) {
        const { run } = await wrk(c, Math.max(...options.connections), 3)
        log(`warm-up RELAY_WORKERS=${c.workers}: ${run.requestsPerSecond.toFixed(0)} req/s`)
        if (previous > 0 && Math.abs(run.requestsPerSecond - previous) / previous < 0.1) break
        previous = run.requestsPerSecond
      }
    }

    let wrkCommand = ''
    for (let round = 0; round < options.rounds; round++) {
      for (const c of rotate(containers, round)) {
        for (const connections of options.connections) {
          const m = await wrk(c, connections, options.duration)
          wrkCommand = m.command
          const run: PiRun = {
            workers: c.workers,
            connections,
            round,
            requestsPerSecond: m.run.requestsPerSecond,
            p50Us: m.run.latencyUs.p50,
            p99Us: m.run.latencyUs.p99,
            rssMaxBytes: m.rssMax,
            workingSetMaxBytes: m.workingSetMax,
            throttledShare: m.periods > 0 ? m.throttled / m.periods : 0,
            cpuUsPerRequest: m.cpuNs / 1000 / m.run.requests
          }
          runs.push(run)
          log(`round ${round + 1}, RELAY_WORKERS=${c.workers}, ${connections} connections: ${run.requestsPerSecond.toFixed(0)} req/s, p99 ${(run.p99Us / 1000).toFixed(1)} ms, throttled ${(run.throttledShare * 100).toFixed(0)} %, RSS ${(run.rssMaxBytes / 1048576).toFixed(0)} MB, working set ${(run.workingSetMaxBytes / 1048576).toFixed(0)} MB`)
        }
      }
    }
    commands.push(wrkCommand.replace(/\S+report\.lua/, 'report.lua'))
    // wrk closes its connections with requests in flight when its time is up: 499s are expected.
    for (const c of containers) checkLogs(c, /"statusCode":499/)
    rows = summarisePi(runs, { rss: idleRss, workingSet: idleWorkingSet }, options)
    removeContainers()
  }

  const streamSteps: PiStreamStep[] = []
  if (wants('streams')) {
    const upstream = registry.spawn('upstream-node', process.execPath, [compileServers(ROOT).upstream, '0'], { cpus: generatorCpu, cwd: ROOT })
    const upstreamPort = await waitForReadyLine(upstream)
    const intervalMs = 1000 / options.streamRate
    for (const workers of options.workers) {
      const c = await startContainer(workers, upstreamPort, 'streams')
      await runTokenStreams({ url: c.url, streams: 50, intervalMs, windowMs: 3000, run: `warm-${workers}` })
      for (let n = nextStreamCount([], { start: options.streamStart, max: options.streamMax }); n !== undefined; n = nextStreamCount(streamSteps.filter((s) => s.workers === workers), { start: options.streamStart, max: options.streamMax })) {
        await sleep(2000)
        const step = await streamStep(c, n, upstreamPort, intervalMs, options.streamEvents * intervalMs, options.streamP99Ms)
        streamSteps.push(step)
        log(`streams, RELAY_WORKERS=${workers}: ${n} ${step.passed ? 'carried' : `not carried (${step.why ?? ''})`}; p99 ${step.p99Ms?.toFixed(1) ?? '—'} ms, ${step.cpuUsPerEvent?.toFixed(0) ?? '—'} µs/event, throttled ${((step.throttledShare ?? NaN) * 100).toFixed(0)} %, generator ${step.generatorCores?.toFixed(2) ?? '—'} cores`)
      }
      checkLogs(c, /"statusCode":(499|503)/)
      removeContainers()
    }
  }

  const commit = execFileSync('git', ['log', '-1', '--format=%h', '--', 'src', 'Containerfile', 'package-lock.json'], { cwd: ROOT, encoding: 'utf8' }).trim()
  const machine = `${osCpus().length} × ${osCpus()[0]?.model ?? 'CPU'}, Linux ${execFileSync('uname', ['-r'], { encoding: 'utf8' }).trim()}, ${podman(['--version'])}`
  const markdown = renderPiMarkdown(rows, {
    date: new Date().toISOString().slice(0, 10),
    machine,
    image: `${image} (${podman(['image', 'inspect', '--format', '{{.Id}}', image]).slice(0, 12)})`,
    commit,
    options,
    commands: [`npm run bench:pi -- ${process.argv.slice(2).join(' ')}`.trim(), ...commands],
    streamSteps
  })
  const out = resolve(ROOT, options.out)
  mkdirSync(out, { recursive: true })
  writeFileSync(join(out, 'PI.md'), markdown)
  writeFileSync(join(out, 'pi.json'), `${JSON.stringify({ runId: RUN_ID, options, idleRss: Object.fromEntries(idleRss), idleWorkingSet: Object.fromEntries(idleWorkingSet), runs, rows, streamSteps }, null, 2)}\n`)
  process.stdout.write(markdown)
  log(`wrote ${relative(process.cwd(), join(out, 'PI.md'))} and pi.json`)
  forget()
  removeContainers()
  await registry.stopAll()
  rmSync(dir, { recursive: true, force: true })
}

/** One step of the stream search: `streams` through the container, its cgroup's CPU, throttling and memory over the window. */
async function streamStep (c: Container, streams: number, upstreamPort: number, intervalMs: number, windowMs: number, p99LimitMs: number): Promise<PiStreamStep> {
  const run = `pi-w${c.workers}-${streams}-${Date.now()}`
  let before: ReturnType<typeof cgroupCpu> & { gen: number, at: number } | undefined
  let after: typeof before
  let workingSetMax = 0
  let sampler: NodeJS.Timeout | undefined
  const generator = processTree(process.pid) // this harness and the upstream it started
  const snapshot = (): NonNullable<typeof before> => ({ ...cgroupCpu(c.pid), gen: cpuNs(generator), at: performance.now() })
  try {
    const result = await runTokenStreams({
      url: c.url,
      streams,
      intervalMs,
      windowMs,
      run,
      onWindowStart: () => {
        before = snapshot()
        sampler = setInterval(() => { workingSetMax = Math.max(workingSetMax, cgroupWorkingSet(c.pid)) }, 250)
      },
      onWindowEnd: () => {
        after = snapshot()
        clearInterval(sampler)
      }
    })
    const stats = JSON.parse((await httpGet(`http://127.0.0.1:${upstreamPort}/tokens/stats?run=${run}`)).body) as { sent: number, unsent: number }
    if (before === undefined || after === undefined) return { workers: c.workers, streams, passed: false, why: 'no window: streams were cut before all were open' }
    const delays = delayPercentiles(result.windowDelaysUs)
    const lost = Math.max(0, stats.sent - result.received) + stats.unsent
    const p99Ms = delays.p99 / 1000
    return {
      workers: c.workers,
      streams,
      ...judgeStreamStep({ p99Ms, lost, outOfOrder: result.outOfOrder, cut: result.cut }, p99LimitMs),
      p50Ms: delays.p50 / 1000,
      p99Ms,
      lost,
      cpuUsPerEvent: (after.usageNs - before.usageNs) / 1000 / result.windowDelaysUs.length,
      throttledShare: after.periods > before.periods ? (after.throttled - before.throttled) / (after.periods - before.periods) : 0,
      workingSetMaxBytes: workingSetMax,
      openSeconds: result.openMs / 1000,
      generatorCores: (after.gen - before.gen) / 1e6 / (after.at - before.at)
    }
  } catch (err) {
    return { workers: c.workers, streams, passed: false, why: (err as Error).message.replace(/\s+/g, ' ').slice(0, 160) }
  } finally {
    clearInterval(sampler)
  }
}

// A failed run exits at once (its nginx would keep the event loop alive); the exit hook cleans up.
main().catch((err: unknown) => {
  log(err instanceof Error ? err.message : String(err))
  process.exit(1)
})
