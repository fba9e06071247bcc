// RELAY_WORKERS > 1: node:cluster workers sharing the port, metrics summed over all of them, a crash
// loop ending the pod, and one orderly drain on SIGTERM or Ctrl-C. (A worker killed under load:
// test/resilience/relay-faults.test.ts.)
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createServer } from 'node:net'
import { once } from 'node:events'
import type { AddressInfo } from 'node:net'
import { spawnRelay } from '../helpers/relay.js'
import { startUpstream, waitFor } from '../helpers/upstreams.js'

function sumOf (metrics: string, pattern: RegExp): number {
  let sum = 0
  for (const match of metrics.matchAll(pattern)) sum += Number(match[1])
  return sum
}

test('after exactly N proxied requests, /metrics from any worker adds up to N', async (t) => {
  const upstream = await startUpstream()
  t.after(() => upstream.close())
  const relay = await spawnRelay({ UPSTREAM_URL: upstream.url, RELAY_WORKERS: '2' }, { ready: 2 })
  t.after(() => relay.stop())

  const N = 40
  await Promise.all(Array.from({ length: N }, async () => {
    const res = await fetch(`${relay.url}/v1/models`, { headers: { connection: 'close' } })
    assert.equal(res.status, 200)
    await res.arrayBuffer()
  }))
  await waitFor(() => relay.logs.lines.filter((line) => line.path === '/v1/models').length === N, 5000, 'all access log lines')
  const servedBy = new Set(relay.logs.lines.filter((line) => line.path === '/v1/models').map((line) => line.pid))
  assert.equal(servedBy.size, 2, 'both workers served requests')

  for (let i = 0; i < 6; i++) {
    const metrics = await (await fetch(`${relay.url}/metrics`, { headers: { connection: 'close' } })).text()
    assert.equal(sumOf(metrics, /^relay_http_requests_total\{method="GET",endpoint="\/v1\/models",status="200"\} (\d+)$/gm), N)
    assert.equal(sumOf(metrics, /^relay_http_request_duration_seconds_count\{method="GET",endpoint="\/v1\/models",status="200"\} (\d+)$/gm), N)
    // One build, whatever the number of workers.
    assert.match(metrics, /^relay_build_info\{version="[^"]+",revision="unknown"\} 1$/m)
  }
})

test('workers that cannot listen (port taken): the primary exits non-zero within seconds', async (t) => {
  const blocker = createServer()
  blocker.listen(0, '127.0.0.1')
  await once(blocker, 'listening')
  t.after(() => new Promise<void>((resolve) => blocker.close(() => resolve())))
  const port = (blocker.address() as AddressInfo).port

  const started = Date.now()
  const relay = await spawnRelay({ UPSTREAM_URL: 'http://127.0.0.1:9', RELAY_WORKERS: '2', RELAY_PORT: String(port) }, { ready: 0 })
  t.after(() => relay.stop())
  const { code } = await relay.exited
  assert.equal(code, 1)
  assert.ok(Date.now() - started < 10_000, `gave up after ${Date.now() - started} ms`)
  assert.ok(relay.logs.find((line) => line.msg === 'workers keep crashing: giving up so the pod is restarted'))
  assert.ok(relay.logs.find((line) => line.msg === 'cannot listen'))
})

test('SIGTERM to the primary drains every worker once; exit 0 after them', async (t) => {
  const upstream = await startUpstream()
  t.after(() => upstream.close())
  const relay = await spawnRelay({ UPSTREAM_URL: upstream.url, RELAY_WORKERS: '2', RELAY_SHUTDOWN_DELAY_SECONDS: '0.3' }, { ready: 2 })
  t.after(() => relay.stop())
  const res = await fetch(`${relay.url}/stream?tokens=10&interval=100`, { headers: { connection: 'close' } })
  relay.child.kill('SIGTERM')
  assert.match(await res.text(), /data: \[DONE\]/)
  const { code } = await relay.exited
  assert.equal(code, 0)
  assert.equal(relay.logs.lines.filter((line) => line.msg === 'shutdown complete').length, 2)
  assert.ok(relay.logs.find((line) => line.msg === 'all workers stopped'))
})

test('Ctrl-C signals the whole process group: one drain per worker, no "second signal", exit 0', async (t) => {
  const upstream = await startUpstream()
  t.after(() => upstream.close())
  const relay = await spawnRelay({ UPSTREAM_URL: upstream.url, RELAY_WORKERS: '2', RELAY_SHUTDOWN_DELAY_SECONDS: '0.5' }, { ready: 2 })
  t.after(() => relay.stop())
  process.kill(-(relay.child.pid as number), 'SIGINT')
  const { code } = await relay.exited
  assert.equal(code, 0)
  assert.equal(relay.logs.lines.filter((line) => line.msg === 'shutdown complete').length, 2)
  assert.equal(relay.logs.lines.filter((line) => /second signal/.test(line.msg)).length, 0)
})
