// What an attacker poking at the public endpoint tries: smuggling, oversized and trickled requests,
// target and header tricks, spoofed forwarding headers, and hoping a secret shows up in a log.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { connect } from 'node:net'
import { once } from 'node:events'
import { setTimeout as sleep } from 'node:timers/promises'
import { spawnRelay, type RelayProcess } from '../helpers/relay.js'
import { startUpstream, type Upstream } from '../helpers/upstreams.js'
import { rawRequest, readUntilClose } from '../helpers/http.js'

const HEADERS_TIMEOUT_SECONDS = 1
const REQUEST_TIMEOUT_SECONDS = 2

async function start (t: { after: (fn: () => Promise<void>) => void }, env: Record<string, string> = {}): Promise<{ relay: RelayProcess, upstream: Upstream }> {
  const upstream = await startUpstream()
  t.after(() => upstream.close())
  const relay = await spawnRelay({
    UPSTREAM_URL: upstream.url,
    RELAY_HEADERS_TIMEOUT_SECONDS: String(HEADERS_TIMEOUT_SECONDS),
    RELAY_REQUEST_TIMEOUT_SECONDS: String(REQUEST_TIMEOUT_SECONDS),
    ...env
  })
  t.after(() => relay.stop())
  return { relay, upstream }
}

const SMUGGLED = 'GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n'
const SMUGGLING: Record<string, string> = {
  'Content-Length with Transfer-Encoding': `POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n${SMUGGLED}`,
  'Transfer-Encoding with Content-Length': `POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 40\r\n\r\n0\r\n\r\n${SMUGGLED}`,
  'conflicting Content-Length': `POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 40\r\n\r\nhello${SMUGGLED}`,
  'duplicate Content-Length': `POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello${SMUGGLED}`,
  'Content-Length list': `POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5, 40\r\n\r\nhello${SMUGGLED}`,
  'chunked, identity': `POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n${SMUGGLED}`,
  xchunked: `POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: xchunked\r\n\r\n0\r\n\r\n${SMUGGLED}`,
  'space before the colon': `POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\n${SMUGGLED}`,
  'obs-fold': `POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: identity\r\n chunked\r\nContent-Length: 3\r\n\r\nabc${SMUGGLED}`,
  'bare LF': `POST /echo HTTP/1.1\nHost: x\nContent-Length: 0\n\n${SMUGGLED}`,
  'CR inside a header value': `GET /headers HTTP/1.1\r\nHost: x\r\nX-A: a\rX-Injected: 1\r\n\r\n${SMUGGLED}`,
  'LF inside a header value': `GET /headers HTTP/1.1\r\nHost: x\r\nX-A: a\nX-Injected: 1\r\n\r\n${SMUGGLED}`,
  'two Host headers': `GET /headers HTTP/1.1\r\nHost: a.example\r\nHost: b.example\r\n\r\n${SMUGGLED}`
}

test('request smuggling shapes: 400 or closed, and never a second request upstream', async (t) => {
  const { relay, upstream } = await start(t)
  for (const [shape, bytes] of Object.entries(SMUGGLING)) {
    const before = upstream.requests.length
    const res = await rawRequest(relay.port, bytes, 5000)
    assert.ok(res.statusCode === 400 || res.text === '', `${shape}: ${res.statusCode}`)
    assert.ok(res.closedByServer, `${shape}: the connection must be closed, never reused`)
    assert.deepEqual(upstream.requests.slice(before).map((r) => r.url), [], shape)
  }
  assert.ok(!upstream.requests.some((r) => r.url === '/smuggled'))
})

test('oversized headers: 431', async (t) => {
  const { relay, upstream } = await start(t)
  const res = await rawRequest(relay.port, `GET /headers HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`)
  assert.equal(res.statusCode, 431)
  assert.equal(upstream.requests.length, 0)
})

test('slowloris: trickled headers are cut after the headers timeout while normal clients are served', async (t) => {
  const { relay } = await start(t)
  const socket = connect(relay.port, '127.0.0.1')
  await once(socket, 'connect')
  const started = Date.now()
  const request = 'GET /v1/models HTTP/1.1\r\nHost: x\r\nX-Slow: ' + 'a'.repeat(200)
  let i = 0
  const trickle = setInterval(() => { if (!socket.destroyed) socket.write(request[i++ % request.length] as string) }, 50)
  const closed = readUntilClose(socket, 10_000)
  // Meanwhile everyone else is served promptly.
  for (let n = 0; n < 5; n++) {
    const begin = Date.now()
    const res = await fetch(`${relay.url}/v1/models`)
    assert.equal(res.status, 200)
    await res.arrayBuffer()
    assert.ok(Date.now() - begin < 500)
    await sleep(100)
  }
  const res = await closed
  clearInterval(trickle)
  const elapsed = Date.now() - started
  assert.ok(elapsed >= HEADERS_TIMEOUT_SECONDS * 1000 - 100 && elapsed < HEADERS_TIMEOUT_SECONDS * 1000 + 2000, `closed after ${elapsed} ms`)
  assert.ok(res.statusCode === 408 || res.text === '', String(res.statusCode))
})

test('a trickled body is cut after the request timeout, and its upstream request never completes', async (t) => {
  let completed = 0
  const upstream = await startUpstream((req, res) => {
    req.on('error', () => {})
    req.on('end', () => { completed++; res.end('done') })
    req.resume()
  })
  t.after(() => upstream.close())
  const relay = await spawnRelay({ UPSTREAM_URL: upstream.url, RELAY_HEADERS_TIMEOUT_SECONDS: '1', RELAY_REQUEST_TIMEOUT_SECONDS: String(REQUEST_TIMEOUT_SECONDS) })
  t.after(() => relay.stop())
  const socket = connect(relay.port, '127.0.0.1')
  await once(socket, 'connect')
  const started = Date.now()
  socket.write('POST /upload HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nContent-Length: 1000\r\n\r\n')
  const trickle = setInterval(() => { if (!socket.destroyed) socket.write('x') }, 100)
  const res = await readUntilClose(socket, 15_000)
  clearInterval(trickle)
  const elapsed = Date.now() - started
  assert.ok(elapsed < REQUEST_TIMEOUT_SECONDS * 1000 + 2500, `closed after ${elapsed} ms`)
  assert.ok(res.statusCode === 408 || res.statusCode === 0 || res.complete === false, `status ${res.statusCode}`)
  await sleep(200)
  assert.equal(completed, 0)
})

test('targets and Host headers cannot point the relay anywhere but its upstream', async (t) => {
  const { relay, upstream } = await start(t)
  const cases: Array<[string, string, string]> = [
    // [request target, Host header, path the upstream must see]
    ['http://169.254.169.254/latest/meta-data/', 'x', '/latest/meta-data/'],
    ['https://internal.example:8443/admin', 'x', '/admin'],
    ['//169.254.169.254/latest', 'x', '/169.254.169.254/latest'],
    ['/v1/../../../etc/passwd', 'x', '/etc/passwd'],
    ['/v1/%2e%2e/%2E%2E/admin', 'x', '/admin'],
    ['/headers', '169.254.169.254', '/headers'],
    ['/headers', 'localhost:22', '/headers']
  ]
  for (const [target, host, path] of cases) {
    const before = upstream.requests.length
    const res = await rawRequest(relay.port, `GET ${target} HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`)
    assert.ok(res.statusCode === 200 || res.statusCode === 404, `${target}: ${res.statusCode}`)
    const seen = upstream.requests.slice(before)
    assert.equal(seen.length, 1, target)
    assert.equal(seen[0]?.url, path, target)
    assert.equal(seen[0]?.headers.host, `127.0.0.1:${upstream.port}`, target)
  }
  // Encoded slashes would let a path escape its prefix on some servers: refused, not forwarded.
  const before = upstream.requests.length
  const encoded = await rawRequest(relay.port, 'GET /v1/..%2f..%2fadmin HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')
  assert.equal(encoded.statusCode, 400)
  assert.equal(upstream.requests.length, before)
})

test('spoofed forwarding headers never pass as the client address', async (t) => {
  const { relay } = await start(t)
  const res = await rawRequest(relay.port, [
    'GET /headers HTTP/1.1', 'Host: relay.example', 'X-Forwarded-For: 10.0.0.1', 'X-Forwarded-For: 10.0.0.2',
    'X-Real-IP: 10.0.0.3', 'Forwarded: for=10.0.0.4', 'X-Forwarded-Proto: https', 'Connection: close', '', ''
  ].join('\r\n'))
  const { headers } = JSON.parse(res.body) as { headers: Record<string, string> }
  assert.equal(headers['x-forwarded-for'], '127.0.0.1')
  assert.equal(headers['x-forwarded-proto'], 'http')
  assert.equal(headers['x-real-ip'], undefined)
  assert.equal(headers.forwarded, undefined)
})

test('secrets never reach the log, also when requests fail', async (t) => {
  const secrets = { bearer: 'sk-hostile-1', cookie: 'cookie-hostile-2', proxy: 'cHJveHktaG9zdGlsZS0z', token: 'metrics-hostile-4' }
  const { relay } = await start(t, { RELAY_METRICS_TOKEN: secrets.token, RELAY_BODY_LIMIT_BYTES: '64', RELAY_LOG_LEVEL: 'debug' })
  const headers = `Authorization: Bearer ${secrets.bearer}\r\nCookie: s=${secrets.cookie}\r\nProxy-Authorization: Basic ${secrets.proxy}\r\n`
  const attempts = [
    `GET /v1/models HTTP/1.1\r\nHost: x\r\n${headers}Connection: close\r\n\r\n`,
    `POST /echo HTTP/1.1\r\nHost: x\r\n${headers}Content-Length: 100\r\nConnection: close\r\n\r\n`,
    `GET /headers HTTP/1.1\r\nHost: a\r\nHost: b\r\n${headers}Connection: close\r\n\r\n`,
    `GET /headers HTTP/1.1\r\nHost: x\r\n${headers}X-Big: ${'b'.repeat(20_000)}\r\n\r\n`,
    `GET /metrics HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${secrets.token}-wrong\r\nConnection: close\r\n\r\n`,
    `GET /metrics HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${secrets.token}\r\nConnection: close\r\n\r\n`
  ]
  for (const bytes of attempts) await rawRequest(relay.port, bytes)
  await sleep(200)
  const all = relay.logs.raw.join('\n') + relay.stderr()
  for (const secret of Object.values(secrets)) assert.ok(!all.includes(secret), `${secret} leaked`)
  assert.ok(relay.logs.lines.some((line) => line.statusCode === 413))
})
