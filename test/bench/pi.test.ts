// The Pi-sized profile's options, summary, choice of a worker count and report (bench/lib/pi.ts).
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { bestWorkers, judgeStreamStep, nextStreamCount, parsePiOptions, renderPiMarkdown, streamCapacity, summarisePi, type PiRow, type PiRun, type PiStreamStep } from '../../bench/lib/pi.js'

test('options: the chart\'s limits and workers 1, 2, 3 by default; every option parsed; bad values named', () => {
  const o = parsePiOptions([])
  assert.deepEqual([o.cpus, o.memory, o.workers, o.connections, o.rounds, o.image], ['0.5', '512m', [1, 2, 3], [1, 10, 50], 3, undefined])
  const p = parsePiOptions(['--image=localhost/x:y', '--workers=1,4', '--connections=5', '--duration=2', '--rounds=1', '--cpus=1.5', '--memory=1g', '--out=/tmp/o'])
  assert.deepEqual([p.image, p.workers, p.connections, p.duration, p.rounds, p.cpus, p.memory, p.out], ['localhost/x:y', [1, 4], [5], 2, 1, '1.5', '1g', '/tmp/o'])
  assert.equal(parsePiOptions(['--help']).help, true)
  assert.throws(() => parsePiOptions(['--workers=0,2']), /--workers expects a comma-separated list of positive integers, got "0,2"/)
  assert.throws(() => parsePiOptions(['--rounds=x']), /--rounds expects a positive integer/)
  assert.throws(() => parsePiOptions(['--cpus=-1']), /--cpus expects a positive number/)
  assert.throws(() => parsePiOptions(['--memory=lots']), /--memory expects a size/)
  assert.throws(() => parsePiOptions(['--speed=11']), /unknown option --speed/)
  assert.throws(() => parsePiOptions(['fast']), /unknown argument "fast"/)
})

function run (workers: number, connections: number, round: number, requestsPerSecond: number, p99Us: number, rssMaxBytes = 100): PiRun {
  return { workers, connections, round, requestsPerSecond, p50Us: p99Us / 4, p99Us, rssMaxBytes, workingSetMaxBytes: rssMaxBytes / 2, throttledShare: 0.5, cpuUsPerRequest: 400 }
}

test('the summary takes medians over rounds per worker and connection count, and the memory peaks', () => {
  const runs = [
    run(1, 10, 0, 1000, 50_000, 100), run(1, 10, 1, 1200, 40_000, 140), run(1, 10, 2, 1100, 60_000, 120),
    run(2, 10, 0, 900, 70_000, 300), run(2, 10, 1, 950, 80_000, 310), run(2, 10, 2, 2000, 90_000, 305)
  ]
  const rows = summarisePi(runs, { rss: new Map([[1, 80], [2, 200]]), workingSet: new Map([[1, 30], [2, 90]]) }, { workers: [1, 2], connections: [10] })
  assert.deepEqual(rows.map((r) => [r.workers, r.byConnections[0]?.requestsPerSecond, r.byConnections[0]?.p99Us, r.rssMaxBytes, r.workingSetMaxBytes, r.idleRssBytes, r.idleWorkingSetBytes]),
    [[1, 1100, 50_000, 140, 70, 80, 30], [2, 950, 80_000, 310, 155, 200, 90]])
})

function row (workers: number, rpsAtLast: number, p99AtFirst: number): PiRow {
  return {
    workers,
    idleRssBytes: 0,
    rssMaxBytes: 0,
    idleWorkingSetBytes: 0,
    workingSetMaxBytes: 0,
    byConnections: [
      { connections: 1, requestsPerSecond: 500, p50Us: 1, p99Us: p99AtFirst, throttledShare: 0, cpuUsPerRequest: 1 },
      { connections: 50, requestsPerSecond: rpsAtLast, p50Us: 1, p99Us: 1, throttledShare: 0, cpuUsPerRequest: 1 }
    ]
  }
}

test('the best worker count: most throughput at the highest load; near-ties go to the lower p99, then fewer workers', () => {
  assert.equal(bestWorkers([row(1, 1000, 5), row(2, 1500, 9), row(3, 1200, 1)]), 2)
  assert.equal(bestWorkers([row(1, 1000, 9), row(2, 1030, 5), row(3, 900, 1)]), 2, 'within 5 %: the lower p99 wins')
  assert.equal(bestWorkers([row(1, 1000, 5), row(2, 1020, 5), row(3, 1010, 5)]), 1, 'a full tie: the fewest workers')
  assert.throws(() => bestWorkers([]), /no rows/)
})

test('the report names the limits, marks the best row, and lists the exact commands', () => {
  const options = parsePiOptions([])
  const text = renderPiMarkdown([row(1, 1500, 5), row(2, 1000, 9)], { date: '2026-11-26', machine: 'm', image: 'img', commit: 'abc', options, commands: ['podman run x'] })
  assert.match(text, /podman run --cpus 0\.5 --memory 512m/)
  assert.match(text, /\| \*\*1\*\* \(best\) \|/)
  assert.match(text, /\| 2 \|/)
  assert.match(text, /Best under these limits: \*\*RELAY_WORKERS=1\*\*/)
  assert.match(text, /```sh\npodman run x\n```/)
})

test('options: the stream search\'s start, ceiling, criterion and which scenarios run', () => {
  const o = parsePiOptions([])
  assert.deepEqual([o.scenarios, o.streamStart, o.streamMax, o.streamEvents, o.streamRate, o.streamP99Ms], [['requests', 'streams'], 100, 3200, 100, 20, 50])
  const p = parsePiOptions(['--scenarios=streams', '--stream-start=50', '--stream-max=400', '--stream-events=40', '--stream-rate=10', '--stream-p99-ms=80'])
  assert.deepEqual([p.scenarios, p.streamStart, p.streamMax, p.streamEvents, p.streamRate, p.streamP99Ms], [['streams'], 50, 400, 40, 10, 80])
  assert.throws(() => parsePiOptions(['--scenarios=soak']), /--scenarios expects requests, streams or both/)
  assert.throws(() => parsePiOptions(['--stream-max=0']), /--stream-max expects a positive integer/)
})

test('a stream count is carried with p99 within the limit and nothing lost, reordered or cut', () => {
  assert.deepEqual(judgeStreamStep({ p99Ms: 50, lost: 0, outOfOrder: 0, cut: 0 }, 50), { passed: true })
  assert.deepEqual(judgeStreamStep({ p99Ms: 50.1, lost: 0, outOfOrder: 0, cut: 0 }, 50), { passed: false, why: 'p99 50.1 ms > 50 ms' })
  assert.match(judgeStreamStep({ p99Ms: 3, lost: 2, outOfOrder: 0, cut: 1 }, 50).why ?? '', /2 events lost, 0 reordered, 1 streams cut/)
  assert.equal(judgeStreamStep({ p99Ms: NaN, lost: 0, outOfOrder: 0, cut: 0 }, 50).passed, false, 'no delay measured is no pass')
})

/** The counts the search tries when every count up to `limit` is carried. */
function search (limit: number, o = { start: 100, max: 3200 }): number[] {
  const steps: Array<{ streams: number, passed: boolean }> = []
  for (let n = nextStreamCount(steps, o); n !== undefined; n = nextStreamCount(steps, o)) steps.push({ streams: n, passed: n <= limit })
  return steps.map((s) => s.streams)
}

test('the stream search doubles while counts are carried, then bisects to within 10 %', () => {
  assert.deepEqual(search(650), [100, 200, 400, 800, 600, 700, 650])
  assert.deepEqual(search(10_000), [100, 200, 400, 800, 1600, 3200], 'stops at the ceiling')
  assert.deepEqual(search(0), [100, 50, 25], 'not even the first: down to 25 streams')
  assert.deepEqual(search(150, { start: 100, max: 150 }), [100, 150])
})

test('capacity per worker count: the most carried and the first count above it that was not', () => {
  const step = (workers: number, streams: number, passed: boolean): PiStreamStep => ({ workers, streams, passed, ...(passed ? {} : { why: 'p99 60.0 ms > 50 ms' }) })
  const steps = [step(1, 100, true), step(1, 200, true), step(1, 400, false), step(1, 300, true), step(1, 350, false), step(2, 100, false), step(2, 50, false), step(2, 25, false)]
  const capacity = streamCapacity(steps, [1, 2])
  assert.deepEqual(capacity.map((c) => [c.workers, c.carried?.streams, c.failed?.streams]), [[1, 300, 350], [2, undefined, 25]])
  const options = parsePiOptions([])
  const text = renderPiMarkdown([], { date: 'd', machine: 'm', image: 'i', commit: 'c', options, commands: ['podman run x'], streamSteps: steps })
  assert.doesNotMatch(text, /## Small requests/, 'only the stream search ran')
  assert.match(text, /\| \*\*1\*\* \| 300 \|/)
  assert.match(text, /\| 2 \| 0 \|/)
  assert.match(text, /Target \(issue 14\): ≥ 800 concurrent 20-event\/s streams in one 500m \/ 512Mi pod: 300 \(RELAY_WORKERS=1\) — ❌ not met/)
  assert.match(text, /\| 1 \| 350 \| no: p99 60\.0 ms > 50 ms \|/)
  const met = renderPiMarkdown([], { date: 'd', machine: 'm', image: 'i', commit: 'c', options, commands: [], streamSteps: [step(1, 800, true), step(1, 1600, false)] })
  assert.match(met, /: 800 \(RELAY_WORKERS=1\) — ✅ met/)
  const capped = renderPiMarkdown([], { date: 'd', machine: 'm', image: 'i', commit: 'c', options: parsePiOptions(['--stream-max=200']), commands: [], streamSteps: [step(1, 100, true), step(1, 200, true)] })
  assert.match(capped, /: 200 \(RELAY_WORKERS=1\) — ⚪ not measured: the search stopped at --stream-max=200/)
})
