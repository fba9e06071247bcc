// Command-line and environment options of `npm run bench`.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { parseOptions, parseSize } from '../../bench/lib/options.js'

const machine = { env: {}, cores: 2, installed: () => true }

test('defaults: every system, nginx first, the workers scenario only with 4 cores or more', () => {
  const o = parseOptions([], machine)
  assert.deepEqual(o.systems, ['nginx', 'haproxy', 'caddy', 'relay', 'fastify-stock', 'node-raw', 'tcp-pipe'])
  assert.deepEqual(o.scenarios, ['throughput', 'sse', 'transfer', 'idle', 'streams'])
  assert.deepEqual([o.streamCounts, o.streamEvents, o.streamRate], [[100, 500, 1000], 100, 20])
  assert.deepEqual(o.connections, [1, 10, 50])
  assert.equal(o.rounds, 3)
  assert.equal(o.durationSeconds, 2)
  assert.equal(o.latencyDurationSeconds, 1)
  assert.equal(parseOptions(['--duration=5'], machine).latencyDurationSeconds, 2)
  assert.equal(o.transferBytes, 2 ** 30)
  assert.equal(o.node, 'node24')
  assert.ok(o.pin)
  assert.deepEqual(parseOptions([], { ...machine, cores: 4 }).scenarios, ['throughput', 'sse', 'transfer', 'idle', 'streams', 'workers'])
})

test('haproxy and caddy are left out when not installed, and asking for one then fails', () => {
  const neither = { ...machine, installed: (id: string) => id !== 'haproxy' && id !== 'caddy' }
  assert.deepEqual(parseOptions([], neither).systems, ['nginx', 'relay', 'fastify-stock', 'node-raw', 'tcp-pipe'])
  assert.throws(() => parseOptions(['--systems=caddy'], neither), /caddy not installed/)
})

test('streams: counts sorted and deduplicated, shorter with --quick, checked', () => {
  const o = parseOptions(['--stream-counts=1000,100,100', '--stream-events=50', '--stream-rate=10'], machine)
  assert.deepEqual([o.streamCounts, o.streamEvents, o.streamRate], [[100, 1000], 50, 10])
  const q = parseOptions(['--quick'], machine)
  assert.deepEqual([q.streamCounts, q.streamEvents], [[100, 500], 40])
  assert.throws(() => parseOptions(['--stream-counts=0'], machine), /--stream-counts expects a comma-separated list/)
  assert.throws(() => parseOptions(['--stream-rate=-1'], machine), /--stream-rate expects a positive number/)
})

test('nginx is always measured (every ratio is to it), and listed first', () => {
  assert.deepEqual(parseOptions(['--systems=relay'], machine).systems, ['nginx', 'relay'])
  assert.deepEqual(parseOptions(['--systems=relay,nginx'], machine).systems, ['nginx', 'relay'])
})

test('--quick shortens everything; explicit options win over it', () => {
  const q = parseOptions(['--quick'], machine)
  assert.equal(q.rounds, 1)
  assert.equal(q.durationSeconds, 1)
  assert.equal(q.transferBytes, 256 * 2 ** 20)
  assert.equal(parseOptions(['--quick', '--rounds=5'], machine).rounds, 5)
})

test('the environment selects too (for item 3\'s runs), the command line wins', () => {
  const env = { BENCH_SYSTEMS: 'relay,node-raw', BENCH_SCENARIOS: 'throughput', BENCH_ROUNDS: '7', BENCH_NODE: 'system', BENCH_OUT: '/tmp/x' }
  const o = parseOptions([], { ...machine, env })
  assert.deepEqual(o.systems, ['nginx', 'relay', 'node-raw'])
  assert.deepEqual(o.scenarios, ['throughput'])
  assert.equal(o.rounds, 7)
  assert.equal(o.node, 'system')
  assert.equal(o.outDir, '/tmp/x')
  assert.equal(parseOptions(['--rounds=2'], { ...machine, env }).rounds, 2)
})

test('bad input is refused with the reason', () => {
  assert.throws(() => parseOptions(['--systems=traefik'], machine), /unknown traefik/)
  assert.throws(() => parseOptions(['--scenarios=fast'], machine), /unknown fast/)
  assert.throws(() => parseOptions(['--rounds=0'], machine), /positive integer/)
  assert.throws(() => parseOptions(['--duration=abc'], machine), /positive integer/)
  assert.throws(() => parseOptions(['--duration=1.5'], machine), /positive integer/, 'wrk takes whole seconds')
  assert.throws(() => parseOptions(['--frobnicate'], machine), /unknown option --frobnicate/)
  assert.throws(() => parseOptions(['relay'], machine), /unexpected argument/)
})

test('connections are sorted and deduplicated; --wait-quiet defaults to 300 s', () => {
  assert.deepEqual(parseOptions(['--connections=50,1,10,1'], machine).connections, [1, 10, 50])
  assert.equal(parseOptions(['--wait-quiet'], machine).waitQuietSeconds, 300)
  assert.equal(parseOptions(['--wait-quiet=60'], machine).waitQuietSeconds, 60)
  assert.equal(parseOptions([], machine).waitQuietSeconds, 0)
})

test('sizes in binary units', () => {
  assert.equal(parseSize('1G'), 2 ** 30)
  assert.equal(parseSize('256M'), 256 * 2 ** 20)
  assert.equal(parseSize('64KiB'), 64 * 1024)
  assert.equal(parseSize('1.5g'), 1.5 * 2 ** 30)
  assert.equal(parseSize('1048576'), 2 ** 20)
  assert.throws(() => parseSize('lots'), /not a size/)
  assert.throws(() => parseSize('0'), /positive/)
})
