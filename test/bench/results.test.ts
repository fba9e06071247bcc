// Summaries and targets: medians over rounds, ratios within rounds, met / not met, and the report.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { MB, evaluateStreamTargets, evaluateTargets, lateGrowth, lostEvents, referenceStreams, rssPerStream, summarise, summariseStreams, type Results, type StreamRun, type ThroughputRun, type TransferRun } from '../../bench/lib/results.js'
import { isNoisy, renderMarkdown, renderStdout } from '../../bench/lib/report.js'
import type { SystemId } from '../../bench/lib/systems.js'

function run (system: SystemId, round: number, connections: number, rps: number, p99: number, cpu: number): ThroughputRun {
  return {
    system,
    round,
    connections,
    requests: rps * 2,
    seconds: 2,
    requestsPerSecond: rps,
    cpuUsPerRequest: cpu,
    latencyMs: { p50: p99 / 2, p90: p99 * 0.8, p99, max: p99 * 2 },
    rssMaxBytes: 100 * MB,
    generatorCores: 0.6,
    foreignCores: 0.01,
    command: 'wrk …'
  }
}

function transfer (system: SystemId, direction: 'upload' | 'download', peak: number, quarters: number[]): TransferRun {
  return { system, direction, bytes: 2 ** 30, seconds: 2, baselineRssBytes: 80 * MB, peakGrowthBytes: peak * MB, peakMethod: 'VmHWM', quarterMaxRssBytes: quarters.map((q) => q * MB) }
}

function fixture (): Results {
  const throughput: ThroughputRun[] = []
  // Round 2 is a slow round for everybody: ratios must not move.
  for (const [round, k] of [[1, 1], [2, 0.5], [3, 1]] as const) {
    for (const c of [1, 10, 50]) {
      throughput.push(run('nginx', round, c, 40000 * k, 0.3 + c * 0.02, 21))
      throughput.push(run('relay', round, c, 12000 * k, 0.5 + c * 0.1, 83))
    }
  }
  return {
    meta: {
      date: '2026-01-01T00:00:00.000Z',
      elapsedSeconds: 150,
      machine: { cpuModel: 'Test CPU', cores: 2, kernel: '6.1', memoryBytes: 8 * 2 ** 30, virtualised: false },
      versions: { nginx: '1.22.1' },
      pinning: { proxyCpus: '0', generatorCpus: '1', note: 'proxy on 0' },
      load: { before: 0.1, after: 0.9, samples: [{ when: 'start', one: 0.1 }] },
      maxLoad: 0.5,
      options: { rounds: 3, connections: [1, 10, 50], durationSeconds: 2, latencyDurationSeconds: 1, sseStreamsPerRound: 3, sseEvents: 20, sseIntervalMs: 10, transferBytes: 2 ** 30, idleConnections: 1000 },
      commands: ['npm run bench'],
      configs: [{ name: 'nginx.conf', text: 'worker_processes 1;' }],
      notes: ['a note']
    },
    systems: [
      { id: 'nginx', label: 'nginx proxy_pass', description: '', idleRssBytes: 14 * MB, processes: 2 },
      { id: 'relay', label: 'tokenplace-relay', description: '', idleRssBytes: 75 * MB, processes: 1 }
    ],
    throughput,
    sse: [1, 2, 3].flatMap((round) => [
      { system: 'nginx' as const, round, firstEventMs: 1.0, eventDelaysMs: [0.2, 0.3, 0.25] },
      { system: 'relay' as const, round, firstEventMs: 1.5, eventDelaysMs: [0.3, 0.4, 0.35] },
      { system: 'direct' as const, round, firstEventMs: 0.5, eventDelaysMs: [0.1, 0.1, 0.1] }
    ]),
    transfers: [
      transfer('relay', 'upload', 30, [100, 104, 103, 105]),
      transfer('relay', 'download', 30, [100, 110, 120, 130])
    ],
    idle: [{ system: 'relay', connections: 1000, rssBeforeBytes: 80 * MB, rssAfterBytes: 80 * MB + 1000 * 10 * 1024 }],
    workers: [],
    streams: [],
    workersSkipped: 'this machine has 2 CPUs'
  }
}

test('medians over rounds, ratios to nginx within each round', () => {
  const s = summarise(fixture())
  assert.equal(s.loadConnections, 50)
  const relay = s.systems.find((x) => x.id === 'relay')
  assert.ok(relay !== undefined)
  assert.equal(relay.ratioToNginx[50], 0.3)
  assert.equal(relay.rps[50], 12000)
  assert.equal(relay.cpuUsPerRequest[50], 83)
  assert.ok(Math.abs((relay.p99OverNginxMs[10] as number) - (1.5 - 0.5)) < 1e-9)
  assert.ok(Math.abs((relay.sse?.firstEventOverNginxMs as number) - 0.5) < 1e-9)
  assert.ok(Math.abs((relay.sse?.eventDelayOverNginxMs as number) - 0.1) < 1e-9)
  assert.equal(relay.idleConnectionBytes, 10 * 1024)
  assert.deepEqual(s.direct, { firstEventMs: 0.5, eventDelayMs: 0.1, eventDelayP99Ms: 0.1 })
})

test('targets: each judged met or not met from the numbers, the workers target not measured with the reason', () => {
  const targets = evaluateTargets(summarise(fixture()), fixture())
  const status = Object.fromEntries(targets.map((t) => [t.name.replace(/ \(.*\)$/, ''), t.status]))
  assert.equal(status['throughput at 50 connections, share of nginx\'s'], 'met')
  assert.equal(status['CPU per request at 50 connections'], 'met')
  assert.equal(status['p99 latency over nginx\'s at 10 connections'], 'met') // +1.0 ms
  assert.equal(status['p99 latency over nginx\'s at 1 connection'], 'met') // +0.28 ms
  assert.equal(status['SSE first event, later than through nginx by'], 'met')
  assert.equal(status['SSE per-event delay, over nginx\'s'], 'met')
  assert.equal(status['idle RSS per worker process'], 'met')
  assert.equal(status['memory per idle keep-alive connection'], 'met')
  assert.equal(targets.find((t) => t.name.includes('up,'))?.status, 'met')
  assert.equal(targets.find((t) => t.name.includes('down,'))?.status, 'not met', 'RSS that keeps climbing with the bytes grows with size')
  const workers = targets.find((t) => t.name.includes('RELAY_WORKERS'))
  assert.equal(workers?.status, 'not measured')
  assert.match(workers?.measured ?? '', /2 CPUs/)
})

test('targets not met, and not measured when the relay was not run', () => {
  const r = fixture()
  r.throughput = r.throughput.map((t) => t.system === 'relay' ? { ...t, requestsPerSecond: t.requestsPerSecond / 2, cpuUsPerRequest: 170, latencyMs: { ...t.latencyMs, p99: t.latencyMs.p99 + 3 } } : t)
  r.systems[1] = { ...(r.systems[1] as Results['systems'][number]), idleRssBytes: 90 * MB }
  const targets = evaluateTargets(summarise(r), r)
  for (const name of ['throughput', 'CPU per request', 'p99 latency over nginx\'s at 10', 'p99 latency over nginx\'s at 1 ', 'idle RSS']) {
    assert.equal(targets.find((t) => t.name.startsWith(name))?.status, 'not met', name)
  }
  const noRelay = { ...fixture(), systems: fixture().systems.slice(0, 1), throughput: fixture().throughput.filter((t) => t.system === 'nginx'), sse: [], transfers: [], idle: [] }
  assert.ok(evaluateTargets(summarise(noRelay), noRelay).every((t) => t.status === 'not measured'))
})

test('late growth compares the second half\'s peak with the first half\'s', () => {
  assert.equal(lateGrowth(transfer('relay', 'upload', 0, [100, 104, 103, 105])) / MB, 1)
  assert.equal(lateGrowth(transfer('relay', 'upload', 0, [100, 110, 120, 130])) / MB, 20)
})

test('CPU per request is also compared to nginx\'s within each round', () => {
  const relay = summarise(fixture()).systems.find((x) => x.id === 'relay')
  assert.ok(Math.abs((relay?.cpuRatioToNginx[50] as number) - 83 / 21) < 1e-9)
})

test('a run is noisy when the same fixed work took much longer at one point than another', () => {
  const r = fixture()
  r.meta.load.speedProbes = [{ when: 'start', ms: 40 }, { when: 'end', ms: 44 }]
  assert.equal(isNoisy(r, summarise(r)).noisy, false)
  r.meta.load.speedProbes.push({ when: 'after round 2', ms: 60 })
  assert.match(isNoisy(r, summarise(r)).why.join(), /50 % longer/)
})

test('a run is noisy when the load was high at the start or others used the CPU', () => {
  const r = fixture()
  assert.equal(isNoisy(r, summarise(r)).noisy, false)
  r.meta.load.before = 2
  assert.match(isNoisy(r, summarise(r)).why.join(), /load average was 2\.00/)
  const busy = fixture()
  busy.throughput = busy.throughput.map((t) => ({ ...t, foreignCores: 0.5 }))
  assert.match(isNoisy(busy, summarise(busy)).why.join(), /0\.50 cores/)
})

test('RESULTS.md holds the machine, the table, the targets, the plot, the commands and the configs', () => {
  const r = fixture()
  const s = summarise(r)
  const md = renderMarkdown(r, s, evaluateTargets(s, r))
  for (const expected of ['Test CPU, 2 cores', '## Summary', '## Targets (issue 6)', '✅ met', '❌ not met', '⚪ not measured', '![p50 and p99', 'latency.svg',
    '```sh\nnpm run bench', 'worker_processes 1;', 'a note', '| tokenplace-relay | 12,000 | 0.300 | 83.0 |', 'Quiet run']) {
    assert.ok(md.includes(expected), expected)
  }
  r.meta.load.before = 3
  assert.match(renderMarkdown(r, s, evaluateTargets(s, r)), /Noisy run — draw no conclusions/)
  const out = renderStdout(r, s, evaluateTargets(s, r))
  assert.match(out, /^system\s+req\/s@50/)
  assert.match(out, /NOT MET\s+RSS growth streaming 1 GiB down/)
})

function streamRun (system: StreamRun['system'], round: number, streams: number, cpu: number | undefined, p99: number, extra: Partial<StreamRun> = {}): StreamRun {
  return {
    system,
    label: system === 'relay' ? 'tokenplace-relay' : system === 'direct' ? '(no proxy: client → upstream)' : system,
    round,
    streams,
    openSeconds: 0.5,
    windowEvents: streams * 100,
    windowSeconds: 5,
    cpuUsPerEvent: cpu,
    delayMs: { p50: p99 / 4, p99, max: p99 * 2 },
    sent: streams * 110,
    received: streams * 110,
    unsent: 0,
    outOfOrder: 0,
    cut: 0,
    ...(cpu === undefined ? {} : { idleRssBytes: 80 * MB, openRssBytes: 80 * MB + streams * 20 * 1024 }),
    generatorCores: 0.4,
    foreignCores: 0.01,
    ...extra
  }
}

function streamFixture (): StreamRun[] {
  const runs: StreamRun[] = []
  // Round 2 runs at half speed for everybody: the ratios and differences within a round hold.
  for (const [round, k] of [[1, 1], [2, 2], [3, 1]] as const) {
    for (const n of [100, 500]) {
      runs.push(streamRun('nginx', round, n, 22 * k, 3 * k), streamRun('caddy', round, n, 35 * k, 4 * k),
        streamRun('relay', round, n, 63 * k, 4.5 * k), streamRun('direct', round, n, undefined, 2 * k))
    }
  }
  return runs
}

test('streams: medians over rounds, CPU ratios to nginx and to Caddy and p99 over Caddy\'s within each round', () => {
  const rows = summariseStreams(streamFixture())
  const relay = rows.find((r) => r.system === 'relay' && r.streams === 500)
  assert.ok(relay !== undefined)
  assert.equal(relay.cpuUsPerEvent, 63)
  assert.ok(Math.abs(relay.cpuRatioToNginx - 63 / 22) < 1e-9)
  assert.ok(Math.abs(relay.cpuRatioToCaddy - 1.8) < 1e-9)
  assert.ok(Math.abs(relay.p99OverCaddyMs - 0.5) < 1e-9, 'the median of +0.5, +1.0, +0.5')
  assert.equal(relay.rssPerStreamBytes, 20 * 1024)
  assert.deepEqual([relay.lost, relay.outOfOrder, relay.cut, relay.rounds], [0, 0, 0, 3])
  assert.deepEqual(rows.map((r) => `${r.streams} ${r.system}`).slice(0, 4), ['100 nginx', '100 caddy', '100 relay', '100 direct'])
  const direct = rows.find((r) => r.system === 'direct')
  assert.ok(Number.isNaN(direct?.cpuUsPerEvent) && Number.isNaN(direct?.rssPerStreamBytes), 'no proxy: no CPU, no RSS')
})

test('streams: lost events, RSS per active stream, the reference count', () => {
  assert.equal(lostEvents(streamRun('relay', 1, 10, 60, 5, { sent: 1100, received: 1090 })), 10)
  assert.equal(lostEvents(streamRun('relay', 1, 10, 60, 5, { sent: 1100, received: 1100, unsent: 40, cut: 1 })), 40, 'a stream cut short loses what it never carried')
  assert.equal(rssPerStream(streamRun('relay', 1, 500, 60, 5, { idleRssBytes: 100 * MB, openRssBytes: 110 * MB })), 10 * MB / 500)
  assert.equal(rssPerStream(streamRun('direct', 1, 500, undefined, 5)), undefined)
  const rows = summariseStreams(streamFixture())
  assert.equal(referenceStreams(rows), 500)
  assert.equal(referenceStreams(rows.filter((r) => r.streams === 100)), 100)
  assert.equal(referenceStreams(summariseStreams([streamRun('relay', 1, 200, 1, 1), streamRun('relay', 1, 800, 1, 1)])), 800, 'equally near: the larger')
})

test('issue 14\'s targets: judged at 500 streams from the numbers, the Pi one pointed to PI.md, item 4 from the small requests', () => {
  const r = fixture()
  const targets = evaluateStreamTargets(summariseStreams(streamFixture()), summarise(r))
  const status = (start: string): string | undefined => targets.find((t) => t.name.startsWith(start))?.status
  assert.equal(status('CPU per relayed event at 500 streams'), 'not met') // 1.8× Caddy
  assert.match(targets[0]?.measured ?? '', /^1\.80× \(63\.0 µs; Caddy 35\.0 µs\); at 100: 1\.80×$/)
  assert.equal(status('p99 added delay at 500 streams'), 'met') // +0.5 ms
  assert.equal(status('RSS per active stream at 500'), 'not met') // 20 KB
  assert.equal(status('events lost'), 'met')
  assert.equal(status('concurrent 20-event/s streams'), 'not measured')
  assert.equal(status('small requests, every feature on'), 'met') // 0.3× nginx
  const lossy = streamFixture().map((x) => x.system === 'relay' && x.streams === 500 && x.round === 2 ? { ...x, received: x.sent - 3, cut: 1, cpuUsPerEvent: 36 * 2 } : x)
  const judged = evaluateStreamTargets(summariseStreams(lossy), summarise(r))
  assert.match(judged.find((t) => t.name.startsWith('events lost'))?.measured ?? '', /relay at 500: 3 lost, 0 reordered, 1 streams cut/)
  assert.equal(judged.find((t) => t.name.startsWith('events lost'))?.status, 'not met')
  assert.ok(evaluateStreamTargets([], summarise(r)).slice(0, 4).every((t) => t.status === 'not measured'))
})

test('RESULTS.md and the summary show the streaming tables, the plot and issue 14\'s targets; a streaming-only run shows no small-request tables', () => {
  const r = { ...fixture(), streams: streamFixture() }
  r.meta.options = { ...r.meta.options, streamCounts: [100, 500], streamEvents: 100, streamRate: 20 }
  const s = summarise(r)
  const rows = summariseStreams(r.streams)
  const streams = { rows, targets: evaluateStreamTargets(rows, s) }
  const md = renderMarkdown(r, s, evaluateTargets(s, r), streams)
  for (const expected of ['## Streaming: concurrent token streams (issue 14)', '### 500 streams (10,000 events/s)', '| **tokenplace-relay** | 63.0 | 2.86 | 1.80 | 1.13 / 4.50 | 0 | 20.0 | 80.0 / 89.8 |',
    '| (no proxy: client → upstream) | — | — | — |', '![p50 and p99 added delay', 'streams.svg', '## Targets (issue 14)', '### Streaming runs', '## Summary', '## Targets (issue 6)']) {
    assert.ok(md.includes(expected), expected)
  }
  const onlyStreams = renderMarkdown({ ...r, systems: [], throughput: [], sse: [], transfers: [], idle: [] }, summarise({ ...r, systems: [], throughput: [] }), [], streams)
  assert.ok(!onlyStreams.includes('## Summary') && !onlyStreams.includes('### wrk runs') && onlyStreams.includes('### Streaming runs'))
  const out = renderStdout(r, s, evaluateTargets(s, r), streams)
  assert.match(out, /^streams\s+system\s+µs\/event/m)
  assert.match(out, /NOT MET\s+CPU per relayed event at 500 streams/)
})
