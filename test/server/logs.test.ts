// Logs: one JSON object per line on stdout, level as a word, a timestamp, the request id on request
// lines, and never a secret, also when things go wrong.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawnRelay } from '../helpers/relay.js'
import { refusedPort, startUpstream, waitFor } from '../helpers/upstreams.js'
import { rawRequest } from '../helpers/http.js'

// The distinctive part of each secret; the headers below wrap them the way clients send them.
const SECRETS = ['sk-client-secret-1', 'cookie-secret-2', 'cHJveHktc2VjcmV0LTM', 'set-cookie-secret-4', 'metrics-token-secret-5']

test('every line is JSON with a level word and an ISO time; request lines carry the request id; no secret appears', async (t) => {
  const upstream = await startUpstream((req, res) => {
    req.resume()
    res.writeHead(200, { 'content-type': 'text/plain', 'set-cookie': `sid=${SECRETS[3]}; HttpOnly` })
    res.end('ok')
  })
  t.after(() => upstream.close())
  const relay = await spawnRelay({ UPSTREAM_URL: upstream.url, RELAY_METRICS_TOKEN: SECRETS[4] as string, RELAY_LOG_LEVEL: 'trace' })
  t.after(() => relay.stop())
  const down = await spawnRelay({ UPSTREAM_URL: `http://127.0.0.1:${await refusedPort()}`, RELAY_METRICS_TOKEN: SECRETS[4] as string, RELAY_LOG_LEVEL: 'trace' })
  t.after(() => down.stop())

  for (const target of [relay, down]) {
    const res = await rawRequest(target.port, [
      'POST /v1/chat/completions?user=alice HTTP/1.1', 'Host: relay.example.com',
      `Authorization: Bearer ${SECRETS[0]}`, `Cookie: session=${SECRETS[1]}`, `Proxy-Authorization: Basic ${SECRETS[2]}`,
      'X-Request-Id: trace-logs-1', 'Content-Type: application/json', 'Content-Length: 2', 'Connection: close', '', '{}'
    ].join('\r\n'))
    assert.ok(res.statusCode === 200 || res.statusCode === 502)
    await fetch(`${target.url}/metrics`, { headers: { authorization: `Bearer ${SECRETS[4]}` } })
    await fetch(`${target.url}/metrics`, { headers: { authorization: 'Bearer wrong' } })
    await waitFor(() => target.logs.lines.some((line) => line.reqId === 'trace-logs-1' && line.statusCode !== undefined), 5000, 'the request line')
  }

  for (const target of [relay, down]) {
    for (const raw of target.logs.raw) {
      for (const secret of SECRETS) assert.ok(!raw.includes(secret), `a secret leaked: ${raw}`)
    }
    for (const line of target.logs.lines) {
      assert.match(line.level, /^(trace|debug|info|warn|error|fatal)$/)
      assert.match(line.time, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/)
      assert.equal(typeof line.msg, 'string')
    }
    const requestLine = target.logs.find((line) => line.reqId === 'trace-logs-1' && line.statusCode !== undefined)
    assert.equal(requestLine?.path, '/v1/chat/completions', 'the path is logged without its query')
    assert.equal(requestLine?.method, 'POST')
    assert.equal(typeof requestLine?.responseTime, 'number')
    assert.equal(target.stderr(), '')
  }
  const failure = down.logs.find((line) => line.reason === 'connect')
  assert.equal(failure?.reqId, 'trace-logs-1')
})

// Lines about the process, not about a request: these alone may lack a request id.
const PROCESS_LINES = [/^Server listening at /, /^relay ready$/, /^readiness: /, /^shutdown/, /^all workers stopped$/]

test('at DEBUG every line about a request carries its request id, and each failure is logged once', async (t) => {
  const upstream = await startUpstream((req, res) => {
    req.resume()
    if (req.url === '/cut') {
      res.writeHead(200, { 'content-type': 'text/event-stream' })
      res.write('data: 1\n\n')
      setTimeout(() => res.socket?.destroy(), 50)
    } else if (req.url === '/never') {
      // never answers: the relay's timeout ends it
    } else {
      res.end('ok')
    }
  })
  t.after(() => upstream.close())
  const relay = await spawnRelay({ UPSTREAM_URL: upstream.url, RELAY_LOG_LEVEL: 'DEBUG', RELAY_UPSTREAM_TIMEOUT_SECONDS: '0.5', RELAY_BODY_LIMIT_BYTES: '16' })
  t.after(() => relay.stop())
  const down = await spawnRelay({ UPSTREAM_URL: `http://127.0.0.1:${await refusedPort()}`, RELAY_LOG_LEVEL: 'DEBUG' })
  t.after(() => down.stop())

  const failing: Array<[typeof relay, string, string]> = [
    [relay, 'debug-timeout', 'GET /never HTTP/1.1'],
    [relay, 'debug-cut', 'GET /cut HTTP/1.1'],
    [down, 'debug-refused', 'GET /v1/models HTTP/1.1']
  ]
  for (const [target, id, line] of failing) await rawRequest(target.port, `${line}\r\nHost: x\r\nX-Request-Id: ${id}\r\nConnection: close\r\n\r\n`, 5000)
  await rawRequest(relay.port, 'GET /ok HTTP/1.1\r\nHost: x\r\nX-Request-Id: debug-ok\r\nConnection: close\r\n\r\n')
  await rawRequest(relay.port, 'POST /ok HTTP/1.1\r\nHost: x\r\nX-Request-Id: debug-large\r\nContent-Length: 100\r\n\r\n')
  await rawRequest(relay.port, 'GET /ok HTTP/1.1\r\nHost: a\r\nHost: b\r\nX-Request-Id: debug-hosts\r\n\r\n')
  await rawRequest(relay.port, 'BROKEN\r\n\r\n')
  for (const id of ['debug-timeout', 'debug-cut', 'debug-ok', 'debug-large', 'debug-hosts']) {
    await relay.logs.waitFor((l) => l.reqId === id && l.statusCode !== undefined, 5000, `the line of ${id}`)
  }
  await down.logs.waitFor((l) => l.reqId === 'debug-refused' && l.statusCode !== undefined, 5000, 'the refused line')

  for (const target of [relay, down]) {
    const anonymous = target.logs.lines.filter((l) => l.reqId === undefined && !PROCESS_LINES.some((pattern) => pattern.test(l.msg)))
    assert.deepEqual(anonymous, [], 'lines without a request id')
  }
  for (const [target, id] of failing) {
    const problems = target.logs.lines.filter((l) => l.reqId === id && (l.level === 'warn' || l.level === 'error'))
    assert.equal(problems.length, 1, `${id}: ${JSON.stringify(problems)}`)
  }
  // The relay's own refusals name their code.
  assert.equal(relay.logs.find((l) => l.reqId === 'debug-large' && l.statusCode === 413)?.code, 'RELAY_BODY_TOO_LARGE')
  assert.equal(relay.logs.find((l) => l.reqId === 'debug-hosts' && l.statusCode === 400)?.code, 'RELAY_DUPLICATE_HOST')
})
