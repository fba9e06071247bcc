// What a client can do to a connection, as raw bytes: hang up at the worst moment, pipeline hundreds
// of requests, flood headers, send framing the relay does not decode, or what Node.js answers by
// itself. Each costs only the client's own requests, and every answer is logged once and counted.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { connect, type Socket } from 'node:net'
import { once } from 'node:events'
import { setTimeout as sleep } from 'node:timers/promises'
import { spawnRelay, type RelayProcess } from '../helpers/relay.js'
import { startCountingUpstream, startUpstream, waitFor, type CountingUpstream } from '../helpers/upstreams.js'
import { parseResponse, rawRequest, readUntilClose } from '../helpers/http.js'
import { metricsText } from '../helpers/metrics.js'

type TestContext = { after: (fn: () => Promise<void>) => void }

async function relayFor (t: TestContext, upstreamUrl: string, env: Record<string, string> = {}): Promise<RelayProcess> {
  const workers = Number(env.RELAY_WORKERS ?? '1')
  const relay = await spawnRelay({ UPSTREAM_URL: upstreamUrl, ...env }, { ready: workers })
  t.after(() => relay.stop())
  return relay
}

async function counting (t: TestContext): Promise<CountingUpstream> {
  const upstream = await startCountingUpstream()
  t.after(() => upstream.close())
  return upstream
}

async function opened (port: number): Promise<Socket> {
  const socket = connect(port, '127.0.0.1')
  await once(socket, 'connect')
  socket.on('error', () => {})
  return socket
}

/** A fresh client gets its answer promptly: the relay is not jammed. */
async function assertServes (relay: RelayProcess, path = '/delay?ms=1'): Promise<void> {
  const started = Date.now()
  const res = await fetch(`${relay.url}${path}`, { signal: AbortSignal.timeout(5000) })
  assert.equal(res.status, 200)
  await res.arrayBuffer()
  assert.ok(Date.now() - started < 2000, `answered after ${Date.now() - started} ms`)
  assert.equal((await fetch(`${relay.url}/livez`)).status, 200)
}

function countOf (metrics: string, method: string, endpoint: string, status: number): number {
  const line = metrics.split('\n').find((l) => l.startsWith(`relay_http_requests_total{method="${method}",endpoint="${endpoint}",status="${status}"}`))
  return line === undefined ? 0 : Number(line.split(' ').at(-1))
}

for (const trustProxy of [true, false]) {
  for (const workers of [1, 2]) {
    test(`a client that hangs up as the response head arrives costs only its request (trust proxy ${String(trustProxy)}, ${workers} worker(s))`, async (t) => {
      const upstream = await startUpstream((req, res) => {
        req.resume()
        req.on('end', () => {
          res.writeHead(200, { 'content-type': 'text/event-stream' })
          res.flushHeaders()
          setTimeout(() => res.end('data: late\n\n'), 100)
        })
      })
      t.after(() => upstream.close())
      const relay = await relayFor(t, upstream.url, { RELAY_WORKERS: String(workers), ...(trustProxy ? { RELAY_TRUST_PROXY: '127.0.0.1' } : {}) })
      const body = '{"stream":true}'
      // More than the primary's crash-loop limit (10 in a minute), had each crashed a worker.
      for (let i = 0; i < 12; i++) {
        const socket = await opened(relay.port)
        socket.write(`POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nX-Request-Id: hangup-${i}\r\nX-Forwarded-For: 198.51.100.${i}\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body}`)
        await once(socket, 'data')
        socket.destroy()
      }
      for (let i = 0; i < 12; i++) {
        const line = await relay.logs.waitFor((l) => l.reqId === `hangup-${i}` && l.statusCode !== undefined, 5000, `the line of hangup-${i}`)
        assert.equal(line.statusCode, 499)
        assert.equal(line.remoteAddress, trustProxy ? `198.51.100.${i}` : '127.0.0.1')
      }
      assert.equal(relay.child.exitCode, null, 'the relay is still running')
      assert.equal(relay.logs.find((l) => l.level === 'fatal' || l.msg === 'worker died unexpectedly: replacing it'), undefined)
      await assertServes(relay, '/v1/models')
    })
  }
}

for (const workers of [1, 2]) {
  test(`a slow request and pipelined streams, then a hang-up: nothing is left open upstream, nothing jams (${workers} worker(s))`, async (t) => {
    const upstream = await counting(t)
    const relay = await relayFor(t, upstream.url, { RELAY_WORKERS: String(workers), RELAY_UPSTREAM_TIMEOUT_SECONDS: '4' })
    // 300 pipelined requests (more than a connection may queue: it is closed at once) and 20 (queued
    // behind the slow one until the client half-closes). Three of each, so that both workers get some.
    const rounds = [300, 20, 300, 20, 300, 20]
    for (const [round, pipelined] of rounds.entries()) {
      const socket = await opened(relay.port)
      socket.write(`GET /slow HTTP/1.1\r\nHost: x\r\nX-Request-Id: jam-${round}\r\n\r\n` + 'GET /sse HTTP/1.1\r\nHost: x\r\n\r\n'.repeat(pipelined))
      if (pipelined < 32) await waitFor(() => upstream.requests.filter((r) => r.url === '/slow').length > 0 && upstream.open > 0, 5000, 'the slow request upstream')
      socket.end()
      const line = await relay.logs.waitFor((l) => l.reqId === `jam-${round}` && l.statusCode !== undefined, 5000, `the line of jam-${round}`)
      assert.equal(line.statusCode, 499)
    }
    // The hang-ups cancelled what each connection started; nothing queued behind ran.
    await waitFor(() => upstream.open === 0, 5000, 'every upstream request to be closed')
    assert.equal(upstream.requests.filter((r) => r.url === '/sse').length, 0, 'no pipelined request reached the upstream')
    await waitFor(async () => countOf(await metricsText(relay.url), 'GET', '/slow', 499) === rounds.length, 3000, 'the 499s counted')
    for (let i = 0; i < 5; i++) await assertServes(relay)
  })
}

test('pipelined requests are served one at a time, in order', async (t) => {
  const upstream = await counting(t)
  const relay = await relayFor(t, upstream.url)
  const socket = await opened(relay.port)
  const started = Date.now()
  socket.write(Array.from({ length: 5 }, (_, i) => `GET /delay?ms=200&n=${i} HTTP/1.1\r\nHost: x\r\n${i === 4 ? 'Connection: close\r\n' : ''}\r\n`).join(''))
  const { text } = await readUntilClose(socket, 10_000)
  const elapsed = Date.now() - started
  assert.equal(upstream.maxOpen, 1, 'never more than one of them at the upstream')
  assert.ok(elapsed >= 5 * 200, `all five answered in ${elapsed} ms`)
  const order = [...text.matchAll(/"path":"\/delay\?ms=200&n=(\d)"/g)].map((m) => Number(m[1]))
  assert.deepEqual(order, [0, 1, 2, 3, 4])
  assert.equal(text.match(/HTTP\/1\.1 200 OK/g)?.length, 5)
})

test('a connection pipelining more than the relay queues is closed; the others are served', async (t) => {
  const upstream = await counting(t)
  const relay = await relayFor(t, upstream.url)
  const socket = await opened(relay.port)
  socket.write('GET /delay?ms=300 HTTP/1.1\r\nHost: x\r\n\r\n' + 'GET /v1/models HTTP/1.1\r\nHost: x\r\n\r\n'.repeat(100))
  const res = await readUntilClose(socket, 5000)
  assert.ok(res.closedByServer)
  assert.ok(upstream.requests.length <= 1, `${upstream.requests.length} upstream requests`)
  await assertServes(relay)
})

test('after a refusal that closes the connection, nothing more from it reaches the upstream', async (t) => {
  const upstream = await counting(t)
  const relay = await relayFor(t, upstream.url)
  const smuggled = 'GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n'
  for (const first of [
    'GET /first HTTP/1.1\r\nHost: a.example\r\nHost: b.example\r\n\r\n',
    'OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n',
    'GET /first HTTP/1.1\r\n\r\n',
    'POST /first HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n'
  ]) {
    const res = await rawRequest(relay.port, first + smuggled + smuggled)
    assert.ok([400, 501].includes(res.statusCode), `${JSON.stringify(first)}: ${res.statusCode}`)
    assert.equal(res.headers.connection, 'close')
    assert.equal(res.text.match(/^HTTP\/1\.1 /gm)?.length, 1, 'one answer, then the connection is closed')
  }
  await sleep(300)
  assert.deepEqual(upstream.requests.map((r) => r.url), [])
})

test('a header flood hides no framing: more header fields than the relay reads get 431', async (t) => {
  const upstream = await counting(t)
  const relay = await relayFor(t, upstream.url)
  const flood = 'a: 1\r\n'.repeat(2000)
  for (const framing of ['Content-Length: 20971520\r\n', 'Transfer-Encoding: chunked\r\n', 'Host: other.example\r\n']) {
    const socket = await opened(relay.port)
    socket.write(`POST /echo HTTP/1.1\r\nHost: x\r\nX-Request-Id: flood\r\n${flood}${framing}\r\n`)
    socket.write('x'.repeat(1000))
    const res = await readUntilClose(socket, 5000)
    assert.equal(res.statusCode, 431, framing)
    assert.match(res.headers['x-request-id'] ?? '', /^[\w.:-]+$/)
    // Node.js 20 hands the request on and the relay counts the fields; Node.js 24's parser refuses it.
    const { message } = JSON.parse(res.body) as { message: string }
    assert.ok(['The request has more than 100 header fields', 'The request headers are too large'].includes(message), message)
  }
  // 100 fields pass.
  const many = Array.from({ length: 97 }, (_, i) => `x-h${i}: ${i}\r\n`).join('')
  const ok = await rawRequest(relay.port, `GET /v1/models HTTP/1.1\r\nHost: x\r\n${many}Connection: close\r\n\r\n`)
  assert.equal(ok.statusCode, 200)
  assert.equal(upstream.requests.length, 1)
  const metrics = await metricsText(relay.url)
  assert.equal(countOf(metrics, 'POST', '/echo', 431) + countOf(metrics, 'UNKNOWN', 'unmatched', 431), 3)
})

test('transfer codings other than chunked are refused with 501, never forwarded as plain bytes', async (t) => {
  const upstream = await counting(t)
  const relay = await relayFor(t, upstream.url)
  for (const coding of ['gzip, chunked', 'deflate, chunked', 'chunked, chunked']) {
    const res = await rawRequest(relay.port, `POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: ${coding}\r\n\r\n5\r\nhello\r\n0\r\n\r\n`)
    assert.ok(res.statusCode === 501 || res.statusCode === 400, `${coding}: ${res.statusCode}`)
  }
  assert.equal(upstream.requests.length, 0)
})

test('Expect: 100-continue: a body over the limit gets 413 and no 100 Continue; an acceptable one gets 100, then its answer', async (t) => {
  const upstream = await startUpstream()
  t.after(() => upstream.close())
  const relay = await relayFor(t, upstream.url, { RELAY_BODY_LIMIT_BYTES: '1024' })
  const refused = await rawRequest(relay.port, 'POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\nExpect: 100-continue\r\n\r\n')
  assert.equal(refused.statusCode, 413)
  assert.doesNotMatch(refused.text, /100 Continue/)
  assert.equal(upstream.requests.length, 0)

  const socket = await opened(relay.port)
  socket.write('POST /echo HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nContent-Length: 5\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n')
  const [interim] = await once(socket, 'data') as [Buffer]
  assert.match(interim.toString(), /^HTTP\/1\.1 100 Continue\r\n\r\n/)
  socket.write('hello')
  const rest = (interim.toString('latin1') + (await readUntilClose(socket, 5000)).text).replace(/^HTTP\/1\.1 100 Continue\r\n\r\n/, '')
  const res = parseResponse(rest)
  assert.equal(res.statusCode, 200)
  assert.equal(res.body, 'hello')

  const odd = await rawRequest(relay.port, 'GET /v1/models HTTP/1.1\r\nHost: x\r\nExpect: something-else\r\nX-Request-Id: odd-expect\r\n\r\n')
  assert.equal(odd.statusCode, 417)
  assert.equal(odd.headers['x-request-id'], 'odd-expect')
})

test('answers Node.js would make on its own carry a request id, are logged once and counted with their real status', async (t) => {
  const upstream = await counting(t)
  const relay = await relayFor(t, upstream.url, { RELAY_HEADERS_TIMEOUT_SECONDS: '1', RELAY_REQUEST_TIMEOUT_SECONDS: '2' })
  const cases: Array<[string, string, number]> = [
    ['garbage request line', 'NOT HTTP AT ALL\r\n\r\n', 400],
    ['headers over 16 KB', `GET /x HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`, 431],
    ['Host-less HTTP/1.1', 'GET /x HTTP/1.1\r\nX-Request-Id: hostless\r\n\r\n', 400],
    ['CONNECT', 'CONNECT gpu-box:443 HTTP/1.1\r\nHost: gpu-box:443\r\nX-Request-Id: tunnel\r\n\r\n', 405]
  ]
  for (const [what, bytes, status] of cases) {
    const res = await rawRequest(relay.port, bytes)
    assert.equal(res.statusCode, status, what)
    assert.match(res.headers['x-request-id'] ?? '', /^[\w.:-]+$/, `${what}: a request id`)
    assert.equal(JSON.parse(res.body).statusCode, status, what)
    await relay.logs.waitFor((l) => l.reqId === res.headers['x-request-id'] && l.statusCode === status, 3000, `the line of ${what}`)
    assert.equal(relay.logs.lines.filter((l) => l.reqId === res.headers['x-request-id'] && l.statusCode !== undefined).length, 1, `${what}: one line`)
  }
  // Headers trickled past the headers timeout: 408.
  const slow = await opened(relay.port)
  slow.write('GET /x HTTP/1.1\r\nHost: x\r\n')
  const timedOut = await readUntilClose(slow, 5000)
  assert.equal(timedOut.statusCode, 408)
  await relay.logs.waitFor((l) => l.reqId === timedOut.headers['x-request-id'] && l.statusCode === 408, 3000, 'the 408 line')
  // A body trickled past the request timeout: 408 too, logged and counted as 408, not 499.
  const trickle = await opened(relay.port)
  trickle.write('POST /slow HTTP/1.1\r\nHost: x\r\nX-Request-Id: trickled\r\nContent-Length: 1000\r\n\r\n')
  const timer = setInterval(() => { if (!trickle.destroyed) trickle.write('x') }, 100)
  const trickled = await readUntilClose(trickle, 10_000)
  clearInterval(timer)
  assert.equal(trickled.statusCode, 408)
  assert.equal(trickled.headers['x-request-id'], 'trickled')
  const line = await relay.logs.waitFor((l) => l.reqId === 'trickled' && l.statusCode !== undefined, 3000, 'the trickled line')
  assert.equal(line.statusCode, 408)

  const metrics = await metricsText(relay.url)
  assert.equal(countOf(metrics, 'UNKNOWN', 'unmatched', 400), 1)
  assert.equal(countOf(metrics, 'UNKNOWN', 'unmatched', 431), 1)
  assert.equal(countOf(metrics, 'UNKNOWN', 'unmatched', 408), 1)
  assert.equal(countOf(metrics, 'GET', '/x', 400), 1)
  assert.equal(countOf(metrics, 'CONNECT', 'unmatched', 405), 1)
  assert.equal(countOf(metrics, 'POST', '/slow', 408), 1)
  assert.equal(countOf(metrics, 'POST', '/slow', 499), 0)
})

test('a client that stops reading a stream is cut after the send timeout, and its upstream request ends', async (t) => {
  const upstream = await counting(t)
  const relay = await relayFor(t, upstream.url, { RELAY_SEND_TIMEOUT_SECONDS: '1' })
  const socket = await opened(relay.port)
  // Never reads: the kernel's buffers fill, then the relay's, then nothing moves.
  socket.pause()
  socket.write('GET /sse?interval=1&size=65536 HTTP/1.1\r\nHost: x\r\nX-Request-Id: not-reading\r\n\r\n')
  const line = await relay.logs.waitFor((l) => l.reqId === 'not-reading' && l.statusCode !== undefined, 30_000, 'the cut stream')
  assert.equal(line.msg, 'response cut: the client stopped reading')
  await waitFor(() => upstream.open === 0, 3000, 'the upstream stream to end')
  socket.destroy()
  await assertServes(relay)
})
