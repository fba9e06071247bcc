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
