// A GPU server that frames its answers oddly, or wrongly: a reset that would pass for the end of a
// close-delimited body, redirects to its own address, bodiless answers that declare a length, interim
// responses that never stop or were never asked for, a header block over the limit, and bytes that
// arrive on an idle pooled connection. None of them may reach a client as something it is not.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import type { Socket } from 'node:net'
import { spawnRelay, type RelayProcess } from '../helpers/relay.js'
import { onEachRequest, startRawUpstream, type Upstream } from '../helpers/upstreams.js'
import { rawRequest } from '../helpers/http.js'
import { upstreamErrorCounts } from '../helpers/metrics.js'

type TestContext = { after: (fn: () => Promise<void>) => void }

/** A raw upstream that answers each request (by its path) with `respond`, on the same socket. */
async function rawUpstream (t: TestContext, respond: (socket: Socket, path: string, port: number) => void): Promise<Upstream> {
  let port = 0
  const upstream = await startRawUpstream((socket) => {
    onEachRequest(socket, (path) => respond(socket, path, port))
  })
  port = upstream.port
  t.after(() => upstream.close())
  return upstream
}

async function relayFor (t: TestContext, url: string, env: Record<string, string> = {}): Promise<RelayProcess> {
  const relay = await spawnRelay({ UPSTREAM_URL: url, ...env })
  t.after(() => relay.stop())
  return relay
}

for (const [what, head] of [
  ['HTTP/1.1 with Connection: close', 'HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: close\r\n\r\n'],
  ['HTTP/1.0', 'HTTP/1.0 200 OK\r\nContent-Type: text/event-stream\r\n\r\n']
] as const) {
  test(`a close-delimited stream (${what}) the upstream resets mid-body is cut, never passed off as complete`, async (t) => {
    const upstream = await rawUpstream(t, (socket) => {
      socket.write(head + 'data: 1\n\n')
      setTimeout(() => socket.write('data: 2\n\n'), 30)
      setTimeout(() => socket.resetAndDestroy(), 80)
    })
    const relay = await relayFor(t, upstream.url)
    const res = await rawRequest(relay.port, 'GET /v1/stream HTTP/1.1\r\nHost: x\r\nX-Request-Id: reset-close\r\n\r\n', 5000)
    assert.equal(res.statusCode, 200)
    assert.equal(res.body, 'data: 1\n\ndata: 2\n\n')
    assert.equal(res.complete, false, 'the chunked response to the client has no terminating chunk')
    assert.equal((await upstreamErrorCounts(relay.url)).reset, 1)
    const line = await relay.logs.waitFor((l) => l.reqId === 'reset-close' && l.statusCode !== undefined)
    assert.equal(line.msg, 'response cut: the upstream failed')
  })
}

test('a close-delimited stream that ends with a clean close is complete', async (t) => {
  const upstream = await rawUpstream(t, (socket) => {
    socket.end('HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: close\r\n\r\ndata: 1\n\ndata: [DONE]\n\n')
  })
  const relay = await relayFor(t, upstream.url)
  const res = await rawRequest(relay.port, 'GET /v1/stream HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n', 5000)
  assert.equal(res.body, 'data: 1\n\ndata: [DONE]\n\n')
  assert.equal(res.complete, true)
  assert.equal((await upstreamErrorCounts(relay.url)).reset, 0)
})

test('redirects to the upstream\'s own address reach the client as paths on the relay', async (t) => {
  const upstream = await rawUpstream(t, (socket, path, port) => {
    const location = {
      '/base/v1/models': `http://127.0.0.1:${port}/base/v1/models/`,
      '/base/elsewhere': 'https://example.org/docs',
      '/base/relative': '/base/v1/x?y=1',
      '/base/other-port': `http://127.0.0.1:${port + 1}/z`
    }[path] ?? '/'
    socket.write(`HTTP/1.1 308 Permanent Redirect\r\nLocation: ${location}\r\nContent-Location: http://127.0.0.1:${port}/base/doc\r\nContent-Length: 0\r\n\r\n`)
  })
  const relay = await relayFor(t, `${upstream.url}/base`)
  const cases: Array<[string, string]> = [
    ['/v1/models', '/v1/models/'],
    ['/elsewhere', 'https://example.org/docs'],
    ['/relative', '/v1/x?y=1'],
    ['/other-port', `http://127.0.0.1:${upstream.port + 1}/z`]
  ]
  for (const [path, location] of cases) {
    const res = await rawRequest(relay.port, `GET ${path} HTTP/1.1\r\nHost: relay.example\r\nConnection: close\r\n\r\n`)
    assert.equal(res.statusCode, 308, path)
    assert.equal(res.headers.location, location, path)
    assert.equal(res.headers['content-location'], '/doc', path)
    assert.doesNotMatch(res.text, new RegExp(`127\\.0\\.0\\.1:${upstream.port}\\b`), `${path}: the upstream's address leaked`)
  }
})

test('a 304 or 204 that declares a Content-Length passes intact, and is no reset', async (t) => {
  const upstream = await rawUpstream(t, (socket, path) => {
    if (path === '/not-modified') socket.write('HTTP/1.1 304 Not Modified\r\nETag: "v1"\r\nContent-Length: 1234\r\nCache-Control: max-age=60\r\n\r\n')
    else socket.write('HTTP/1.1 204 No Content\r\nX-Kept: yes\r\nContent-Length: 99\r\n\r\n')
  })
  const relay = await relayFor(t, upstream.url)
  const notModified = await rawRequest(relay.port, 'GET /not-modified HTTP/1.1\r\nHost: x\r\nIf-None-Match: "v1"\r\nConnection: close\r\n\r\n')
  assert.equal(notModified.statusCode, 304)
  assert.equal(notModified.headers.etag, '"v1"')
  assert.equal(notModified.headers['cache-control'], 'max-age=60')
  assert.equal(notModified.body, '')
  const noContent = await rawRequest(relay.port, 'DELETE /thing HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')
  assert.equal(noContent.statusCode, 204)
  assert.equal(noContent.headers['x-kept'], 'yes')
  assert.equal(noContent.body, '')
  assert.deepEqual(await upstreamErrorCounts(relay.url), { connect: 0, dns: 0, timeout: 0, reset: 0 })
  // And the relay is still fine with the next request.
  assert.equal((await fetch(`${relay.url}/not-modified`)).status, 304)
})

test('interim responses: endless 102s end in 504 at the timeout; an unasked 100 Continue is skipped', async (t) => {
  const upstream = await rawUpstream(t, (socket, path) => {
    if (path === '/processing') {
      const timer = setInterval(() => { if (!socket.destroyed) socket.write('HTTP/1.1 102 Processing\r\n\r\n') }, 300)
      socket.once('close', () => clearInterval(timer))
    } else {
      socket.write('HTTP/1.1 100 Continue\r\n\r\n')
      setTimeout(() => socket.write('HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 11\r\n\r\n{"ok":true}'), 20)
    }
  })
  const relay = await relayFor(t, upstream.url, { RELAY_UPSTREAM_TIMEOUT_SECONDS: '1' })
  const started = Date.now()
  const processing = await fetch(`${relay.url}/processing`, { signal: AbortSignal.timeout(10_000) })
  const elapsed = Date.now() - started
  assert.equal(processing.status, 504)
  assert.deepEqual(await processing.json(), { statusCode: 504, error: 'Gateway Timeout', message: 'The upstream server did not respond in time' })
  assert.ok(elapsed >= 950 && elapsed < 3000, `504 after ${elapsed} ms`)
  assert.equal((await upstreamErrorCounts(relay.url)).timeout, 1)

  for (let i = 0; i < 3; i++) {
    const continued = await fetch(`${relay.url}/v1/models`, { signal: AbortSignal.timeout(5000) })
    assert.equal(continued.status, 200)
    assert.deepEqual(await continued.json(), { ok: true })
  }
})

test('a response header block over the limit is a 502 that says so', async (t) => {
  const upstream = await rawUpstream(t, (socket) => {
    socket.write(`HTTP/1.1 200 OK\r\nX-Huge: ${'h'.repeat(70_000)}\r\nContent-Length: 2\r\n\r\nok`)
  })
  const relay = await relayFor(t, upstream.url)
  const res = await fetch(`${relay.url}/v1/models`)
  assert.equal(res.status, 502)
  assert.deepEqual(await res.json(), { statusCode: 502, error: 'Bad Gateway', message: 'The upstream server sent response headers over the size limit' })
})

test('bytes an upstream sends on an idle pooled connection never become the next client\'s answer', async (t) => {
  let n = 0
  const upstream = await rawUpstream(t, (socket) => {
    n++
    // Declares 5 bytes, sends them, and later a whole second response nobody asked for.
    socket.write(`HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nreq-${n}`)
    setTimeout(() => { if (!socket.destroyed) socket.write('HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\nsmuggled') }, 50)
  })
  const relay = await relayFor(t, upstream.url)
  const bodies: string[] = []
  for (let i = 0; i < 5; i++) {
    const res = await fetch(`${relay.url}/v1/models`)
    bodies.push(await res.text())
    await new Promise((resolve) => setTimeout(resolve, 120))
  }
  assert.ok(bodies.every((body) => /^req-\d$/.test(body)), JSON.stringify(bodies))
})
