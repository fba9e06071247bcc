// The wrk summary parser: a run with any error must be refused, never reported.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { WRK_JSON_PREFIX, WRK_REPORT_LUA, WrkRunError, parseWrkOutput, wrkArgs } from '../../bench/lib/wrk.js'

function output ({ requests = 60000, errors = {}, text = '' }: { requests?: number, errors?: Partial<Record<'connect' | 'read' | 'write' | 'status' | 'timeout', number>>, text?: string } = {}): string {
  const e = { connect: 0, read: 0, write: 0, status: 0, timeout: 0, ...errors }
  const json = { requests, duration_us: 2_000_000, bytes: requests * 180, errors: e, latency_us: { min: 80, mean: 160.5, stdev: 30.25, max: 4100, p50: 150, p90: 210, p99: 390, p99_9: 1200 } }
  return [
    'Running 2s test @ http://127.0.0.1:8080/json',
    '  1 threads and 10 connections',
    '  Thread Stats   Avg      Stdev     Max   +/- Stdev',
    '    Latency   160.50us   30.25us   4.10ms   90.00%',
    `  ${requests} requests in 2.00s, 10.30MB read`,
    text,
    `Requests/sec:  ${requests / 2}`,
    `${WRK_JSON_PREFIX}${JSON.stringify(json)}`,
    ''
  ].join('\n')
}

test('a clean run: requests/s from the summary, latency in µs', () => {
  const r = parseWrkOutput(output())
  assert.equal(r.requests, 60000)
  assert.equal(r.durationSeconds, 2)
  assert.equal(r.requestsPerSecond, 30000)
  assert.deepEqual(r.latencyUs, { min: 80, mean: 160.5, stdev: 30.25, max: 4100, p50: 150, p90: 210, p99: 390, p99_9: 1200 })
})

test('socket errors and timeouts refuse the run', () => {
  for (const kind of ['connect', 'read', 'write', 'timeout'] as const) {
    assert.throws(() => parseWrkOutput(output({ errors: { [kind]: 1 } })), (err: Error) => err instanceof WrkRunError && /socket errors/.test(err.message), kind)
  }
})

test('answers of 400 or more refuse the run, whether the JSON or the text says so', () => {
  assert.throws(() => parseWrkOutput(output({ errors: { status: 3 } })), /3 answers with a status of 400 or more/)
  assert.throws(() => parseWrkOutput(output({ text: '  Non-2xx or 3xx responses: 7' })), /7 non-2xx or 3xx responses/)
  assert.throws(() => parseWrkOutput(output({ text: '  Socket errors: connect 0, read 2, write 0, timeout 0' })), /Socket errors: connect 0, read 2/)
})

test('a run that answered nothing, or whose text and summary disagree, is refused', () => {
  assert.throws(() => parseWrkOutput(output({ requests: 0 })), /no request was answered/)
  assert.throws(() => parseWrkOutput(output().replace('60000 requests in', '59999 requests in')), /text says 59999 requests/)
})

test('output without the Lua summary line (script not loaded) or with a broken one is refused', () => {
  assert.throws(() => parseWrkOutput('Running 2s test\n  100 requests in 2.00s\n'), /no summary line/)
  assert.throws(() => parseWrkOutput(`${WRK_JSON_PREFIX}{"requests":`), /not JSON/)
  assert.throws(() => parseWrkOutput(`${WRK_JSON_PREFIX}{"requests":1,"duration_us":1,"bytes":1}`), /incomplete/)
  assert.throws(() => parseWrkOutput(output().replace('"p99":390', '"p99":null')), /incomplete/)
})

test('the command line: one thread, the Lua script, a timeout', () => {
  assert.deepEqual(wrkArgs({ url: 'http://127.0.0.1:1/json', connections: 50, durationSeconds: 1.5, script: '/tmp/r.lua' }),
    ['-t', '1', '-c', '50', '-d', '1.5s', '--timeout', '2s', '-s', '/tmp/r.lua', 'http://127.0.0.1:1/json'])
})

test('the Lua script prints the prefix the parser looks for, and every field it reads', () => {
  assert.match(WRK_REPORT_LUA, /^done = function\(summary, latency, requests\)$/m)
  assert.ok(WRK_REPORT_LUA.includes(WRK_JSON_PREFIX))
  for (const field of ['connect', 'read', 'write', 'status', 'timeout', 'p50', 'p99', 'p99_9', 'duration_us']) assert.ok(WRK_REPORT_LUA.includes(`"${field}"`), field)
  // %d breaks on Lua 5.3+ for non-integers: the script formats numbers with %.0f.
  assert.doesNotMatch(WRK_REPORT_LUA, /%d/)
})
