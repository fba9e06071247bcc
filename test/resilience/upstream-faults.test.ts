// The GPU host can misbehave in every way a TCP peer can. Each fault must end in the right status (or
// a cut stream) promptly, be counted by reason and logged once, and leave the relay healthy.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { once } from 'node:events'
import { createServer } from 'node:http'
import { spawnRelay, type RelayProcess } from '../helpers/relay.js'
import { refusedPort, waitFor } from '../helpers/upstreams.js'
import { startFaultyUpstream } from '../helpers/faulty-upstream.js'
import { rawRequest } from '../helpers/http.js'
import { upstreamErrorCounts } from '../helpers/metrics.js'

const TIMEOUT_SECONDS = 1

/** The warn/error lines written about one request */
async function problemLines (relay: RelayProcess, requestId: string): Promise<unknown[]> {
  await relay.logs.waitFor((line) => line.reqId === requestId && line.statusCode !== undefined, 5000, `the request line of ${requestId}`)
  return relay.logs.lines.filter((line) => line.reqId === requestId && (line.level === 'warn' || line.level === 'error'))
}

async function assertHealthy (relay: RelayProcess): Promise<void> {
  assert.equal((await fetch(`${relay.url}/livez`)).status, 200)
  const ok = await fetch(`${relay.url}/ok`)
  assert.equal(ok.status, 200)
  assert.deepEqual(await ok.json(), { ok: true })
}

test('upstream faults: each gets the right answer, promptly, counted and logged once; the relay stays healthy', async (t) => {
  const upstream = await startFaultyUpstream()
  t.after(() => upstream.close())
  const relay = await spawnRelay({ UPSTREAM_URL: upstream.url, RELAY_WORKERS: '2', RELAY_UPSTREAM_TIMEOUT_SECONDS: String(TIMEOUT_SECONDS) }, { ready: 2 })
  t.after(() => relay.stop())
  await assertHealthy(relay)

  await t.test('accepts and never answers: 504 after the timeout', async () => {
    const before = await upstreamErrorCounts(relay.url)
    const started = Date.now()
    const res = await fetch(`${relay.url}/hang`, { method: 'POST', body: '{}', headers: { 'x-request-id': 'fault-hang' } })
    const elapsed = Date.now() - started
    assert.equal(res.status, 504)
    assert.deepEqual(await res.json(), { statusCode: 504, error: 'Gateway Timeout', message: 'The upstream server did not respond in time' })
    assert.ok(elapsed >= TIMEOUT_SECONDS * 1000 - 50 && elapsed < TIMEOUT_SECONDS * 1000 + 2000, `${elapsed} ms`)
    assert.equal((await upstreamErrorCounts(relay.url)).timeout, (before.timeout ?? 0) + 1)
    assert.equal((await problemLines(relay, 'fault-hang')).length, 1)
    await assertHealthy(relay)
  })

  await t.test('answers headers, then stalls: the stream is cut after the timeout, never finished cleanly', async () => {
    const before = await upstreamErrorCounts(relay.url)
    const started = Date.now()
    const res = await rawRequest(relay.port, 'GET /stall HTTP/1.1\r\nHost: x\r\nX-Request-Id: fault-stall\r\n\r\n', 10_000)
    assert.equal(res.statusCode, 200)
    assert.equal(res.body, 'data: 1\n\n')
    assert.equal(res.complete, false)
    assert.ok(Date.now() - started < TIMEOUT_SECONDS * 1000 + 2000)
    assert.equal((await upstreamErrorCounts(relay.url)).timeout, (before.timeout ?? 0) + 1)
    assert.equal((await problemLines(relay, 'fault-stall')).length, 1)
    await assertHealthy(relay)
  })

  await t.test('resets mid-body: the client connection is aborted', async () => {
    const before = await upstreamErrorCounts(relay.url)
    const res = await rawRequest(relay.port, 'GET /reset HTTP/1.1\r\nHost: x\r\nX-Request-Id: fault-reset\r\n\r\n', 10_000)
    assert.equal(res.statusCode, 200)
    assert.equal(res.complete, false)
    assert.equal((await upstreamErrorCounts(relay.url)).reset, (before.reset ?? 0) + 1)
    assert.equal((await problemLines(relay, 'fault-reset')).length, 1)
    // Logged as the upstream's failure, not the client's.
    const line = relay.logs.find((l) => l.reqId === 'fault-reset' && l.statusCode !== undefined)
    assert.equal(line?.msg, 'response cut: the upstream failed')
    assert.equal(line?.statusCode, 200)
    await assertHealthy(relay)
  })

  await t.test('a malformed response: 502', async () => {
    const before = await upstreamErrorCounts(relay.url)
    const res = await fetch(`${relay.url}/malformed`, { headers: { 'x-request-id': 'fault-malformed' } })
    assert.equal(res.status, 502)
    assert.deepEqual(await res.json(), { statusCode: 502, error: 'Bad Gateway', message: 'The upstream server sent an invalid response' })
    assert.equal((await upstreamErrorCounts(relay.url)).reset, (before.reset ?? 0) + 1)
    assert.equal((await problemLines(relay, 'fault-malformed')).length, 1)
    await assertHealthy(relay)
  })

  await t.test('idle keep-alive sockets closed under the pool: 200, or a prompt 502 in the race, never a hang', async () => {
    const before = await upstreamErrorCounts(relay.url)
    const statuses: number[] = []
    for (let i = 0; i < 30; i++) {
      const started = Date.now()
      const res = await fetch(`${relay.url}/idle-close`, { signal: AbortSignal.timeout(5000) })
      await res.arrayBuffer()
      assert.ok(Date.now() - started < 2000)
      statuses.push(res.status)
      await new Promise((resolve) => setTimeout(resolve, 80 + (i % 5) * 10))
    }
    for (const status of statuses) assert.ok(status === 200 || status === 502, String(status))
    const failed = statuses.filter((s) => s === 502).length
    assert.ok(failed <= 10, `${failed} of 30 hit a closing socket`)
    // Every 502 is counted as a reset, nothing else.
    const after = await upstreamErrorCounts(relay.url)
    assert.equal(after.reset, (before.reset ?? 0) + failed)
    assert.equal(after.timeout, before.timeout)
    await assertHealthy(relay)
  })
})

test('upstream refuses, then comes back: 502 while it is down, traffic flows again with no restart', async (t) => {
  const port = await refusedPort()
  const relay = await spawnRelay({ UPSTREAM_URL: `http://127.0.0.1:${port}` })
  t.after(() => relay.stop())
  for (let i = 0; i < 3; i++) {
    const started = Date.now()
    const res = await fetch(`${relay.url}/v1/models`, { headers: { 'x-request-id': `down-${i}` } })
    assert.equal(res.status, 502)
    assert.ok(Date.now() - started < 1000)
    const body = await res.text()
    assert.doesNotMatch(body, new RegExp(`${port}|127\\.0\\.0\\.1|ECONNREFUSED`))
    assert.equal((await problemLines(relay, `down-${i}`)).length, 1)
  }
  assert.equal((await upstreamErrorCounts(relay.url)).connect, 3)
  assert.equal((await fetch(`${relay.url}/healthz`)).status, 200, 'readiness does not depend on the GPU answering')

  const back = createServer((req, res) => { req.resume(); res.end('{"back":true}') })
  back.listen(port, '127.0.0.1')
  await once(back, 'listening')
  t.after(() => new Promise<void>((resolve) => { back.closeAllConnections(); back.close(() => resolve()) }))
  const res = await fetch(`${relay.url}/v1/models`)
  assert.equal(res.status, 200)
  assert.deepEqual(await res.json(), { back: true })
})

test('the upstream name resolves to nothing: 502 counted as dns, readiness degraded, never naming the host', async (t) => {
  const relay = await spawnRelay({ UPSTREAM_URL: 'http://gpu-box.invalid:5010' })
  t.after(() => relay.stop())
  const res = await fetch(`${relay.url}/v1/models`, { headers: { 'x-request-id': 'dns-1' } })
  assert.equal(res.status, 502)
  assert.doesNotMatch(await res.text(), /gpu-box|invalid/)
  assert.equal((await upstreamErrorCounts(relay.url)).dns, 1)
  assert.equal((await problemLines(relay, 'dns-1')).length, 1)
  const health = await fetch(`${relay.url}/healthz`)
  assert.equal(health.status, 503)
  assert.doesNotMatch(await health.text(), /gpu-box/)
  await waitFor(() => relay.logs.lines.some((line) => line.event === 'health_changed' && line.to === 'degraded'), 2000, 'the degraded event')
})
