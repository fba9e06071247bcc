// Upstream trouble becomes the right 5xx with a JSON body that never names the upstream, counted by
// reason and logged once; the relay stays healthy afterwards.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createServer as createHttpsServer } from 'node:https'
import { once } from 'node:events'
import type { AddressInfo } from 'node:net'
import { spawnRelay, startRelay, type InProcessRelay } from '../helpers/relay.js'
import { refusedPort, startRawUpstream, startUpstream } from '../helpers/upstreams.js'
import { rawRequest } from '../helpers/http.js'
import { makeCertificates } from '../helpers/tls.js'

async function upstreamErrors (relay: { url: string }): Promise<Record<string, number>> {
  const text = await (await fetch(`${relay.url}/metrics`)).text()
  const counts: Record<string, number> = {}
  for (const match of text.matchAll(/^relay_upstream_errors_total\{reason="(\w+)"\} (\d+)$/gm)) counts[match[1] as string] = Number(match[2])
  return counts
}

function assertErrorBody (body: unknown, statusCode: number, hidden: RegExp): void {
  assert.deepEqual(Object.keys(body as object).sort(), ['error', 'message', 'statusCode'])
  assert.equal((body as { statusCode: number }).statusCode, statusCode)
  assert.doesNotMatch(JSON.stringify(body), hidden)
  assert.doesNotMatch(JSON.stringify(body), /\bat \S+:\d+|ECONN|127\.0\.0\.1/)
}

function failureLines (relay: InProcessRelay, reason: string): unknown[] {
  return relay.logs.lines.filter((line) => line.reason === reason)
}

test('refused: 502, counted as connect, logged once; traffic flows once the upstream is back', async (t) => {
  const port = await refusedPort()
  const relay = await startRelay({ UPSTREAM_URL: `http://127.0.0.1:${port}` })
  t.after(() => relay.close())
  const res = await fetch(`${relay.url}/v1/models`)
  assert.equal(res.status, 502)
  assertErrorBody(await res.json(), 502, new RegExp(String(port)))
  assert.equal((await upstreamErrors(relay)).connect, 1)
  const lines = failureLines(relay, 'connect')
  assert.equal(lines.length, 1)
  assert.equal((lines[0] as { level: string }).level, 'error')
  assert.equal((lines[0] as { code: string }).code, 'ECONNREFUSED')
  // Once: reply-from's own warning about the same failure is not written.
  assert.equal(relay.logs.raw.filter((line) => line.includes('ECONNREFUSED')).length, 1)

  // The GPU host comes back on the same port: no relay restart needed.
  const { createDemoUpstream } = await import('../../dev/demo-upstream.js')
  const back = createDemoUpstream()
  back.listen(port, '127.0.0.1')
  await once(back, 'listening')
  t.after(() => new Promise<void>((resolve) => back.close(() => resolve())))
  const again = await fetch(`${relay.url}/v1/models`, { headers: { connection: 'close' } })
  assert.equal(again.status, 200)
  assert.equal(((await again.json()) as { object: string }).object, 'list')
})

test('a name that does not resolve: 502, counted as dns', async (t) => {
  const relay = await startRelay({ UPSTREAM_URL: 'http://gpu-box.invalid:5010' })
  t.after(() => relay.close())
  const res = await fetch(`${relay.url}/v1/models`)
  assert.equal(res.status, 502)
  assertErrorBody(await res.json(), 502, /gpu-box|invalid/)
  assert.equal((await upstreamErrors(relay)).dns, 1)
  assert.equal(failureLines(relay, 'dns').length, 1)
})

test('no response headers within the timeout: 504, counted as timeout, promptly', async (t) => {
  const upstream = await startRawUpstream(() => { /* accepts, never answers */ })
  t.after(() => upstream.close())
  const relay = await startRelay({ UPSTREAM_URL: upstream.url, RELAY_UPSTREAM_TIMEOUT_SECONDS: '0.5' })
  t.after(() => relay.close())
  const started = Date.now()
  const res = await fetch(`${relay.url}/v1/chat/completions`, { method: 'POST', body: '{}' })
  const elapsed = Date.now() - started
  assert.equal(res.status, 504)
  assertErrorBody(await res.json(), 504, new RegExp(String(upstream.port)))
  assert.ok(elapsed >= 450 && elapsed < 3000, `answered after ${elapsed} ms`)
  assert.equal((await upstreamErrors(relay)).timeout, 1)
})

test('headers then silence: the client response is cut after the timeout, counted as timeout', async (t) => {
  const upstream = await startRawUpstream((socket) => {
    socket.once('data', () => socket.write('HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n7\r\ndata: 1\r\n'))
  })
  t.after(() => upstream.close())
  const relay = await startRelay({ UPSTREAM_URL: upstream.url, RELAY_UPSTREAM_TIMEOUT_SECONDS: '0.5' })
  t.after(() => relay.close())
  const started = Date.now()
  const res = await rawRequest(relay.port, 'GET /stream HTTP/1.1\r\nHost: x\r\n\r\n')
  assert.equal(res.statusCode, 200)
  assert.equal(res.complete, false, 'a cut stream must not look cleanly finished')
  assert.ok(Date.now() - started < 3000)
  assert.equal((await upstreamErrors(relay)).timeout, 1)
})

test('reset mid-body: the client connection is aborted, not finished cleanly, counted as reset', async (t) => {
  const upstream = await startRawUpstream((socket) => {
    socket.once('data', () => {
      socket.write('HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n9\r\ndata: 1\n\n\r\n')
      setTimeout(() => socket.resetAndDestroy(), 50)
    })
  })
  t.after(() => upstream.close())
  const relay = await startRelay({ UPSTREAM_URL: upstream.url })
  t.after(() => relay.close())
  const res = await rawRequest(relay.port, 'GET /stream HTTP/1.1\r\nHost: x\r\n\r\n')
  assert.equal(res.statusCode, 200)
  assert.equal(res.body, 'data: 1\n\n')
  assert.equal(res.complete, false)
  assert.equal((await upstreamErrors(relay)).reset, 1)
  assert.equal(failureLines(relay, 'reset').length, 1)
  // Healthy afterwards.
  assert.equal((await fetch(`${relay.url}/livez`)).status, 200)
})

test('a malformed response: 502, counted as reset', async (t) => {
  const upstream = await startRawUpstream((socket) => {
    socket.once('data', () => { socket.end('HTTP/1.1 abc nonsense\r\n\r\n') })
  })
  t.after(() => upstream.close())
  const relay = await startRelay({ UPSTREAM_URL: upstream.url })
  t.after(() => relay.close())
  const res = await fetch(`${relay.url}/x`)
  assert.equal(res.status, 502)
  assertErrorBody(await res.json(), 502, new RegExp(String(upstream.port)))
  assert.equal((await upstreamErrors(relay)).reset, 1)
})

test('a 503 from the upstream is passed on, never retried', async (t) => {
  const upstream = await startUpstream((req, res) => {
    req.resume()
    res.writeHead(503, { 'content-type': 'application/json', 'retry-after': '0' })
    res.end('{"error":"busy"}')
  })
  t.after(() => upstream.close())
  const relay = await startRelay({ UPSTREAM_URL: upstream.url })
  t.after(() => relay.close())
  const res = await fetch(`${relay.url}/v1/models`)
  assert.equal(res.status, 503)
  assert.deepEqual(await res.json(), { error: 'busy' })
  await new Promise((resolve) => setTimeout(resolve, 200))
  assert.equal(upstream.requests.length, 1)
})

test('an https upstream with an untrusted certificate is refused with 502 unless its CA is trusted', async (t) => {
  const certs = makeCertificates()
  t.after(() => certs.remove())
  const server = createHttpsServer({ key: certs.key, cert: certs.cert }, (req, res) => {
    req.resume()
    res.writeHead(200, { 'content-type': 'application/json' })
    res.end('{"secure":true}')
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  t.after(() => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => resolve()) }))
  const url = `https://127.0.0.1:${(server.address() as AddressInfo).port}`

  const untrusted = await startRelay({ UPSTREAM_URL: url })
  t.after(() => untrusted.close())
  const refused = await fetch(`${untrusted.url}/x`)
  assert.equal(refused.status, 502)
  assert.match(((await refused.json()) as { message: string }).message, /secure connection/)
  assert.equal((await upstreamErrors(untrusted)).connect, 1)

  // NODE_EXTRA_CA_CERTS is read at process start: the documented way to trust a private CA.
  const trusted = await spawnRelay({ UPSTREAM_URL: url, NODE_EXTRA_CA_CERTS: certs.caFile })
  t.after(() => trusted.stop())
  const ok = await fetch(`${trusted.url}/x`)
  assert.equal(ok.status, 200)
  assert.deepEqual(await ok.json(), { secure: true })
})
