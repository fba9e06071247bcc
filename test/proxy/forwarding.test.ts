// What reaches the upstream, and what comes back: paths, headers, methods, request ids.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { startRelay } from '../helpers/relay.js'
import { startUpstream } from '../helpers/upstreams.js'
import { rawRequest } from '../helpers/http.js'

test('a path prefix in UPSTREAM_URL is kept, the query passes untouched', async (t) => {
  const upstream = await startUpstream()
  t.after(() => upstream.close())
  const relay = await startRelay({ UPSTREAM_URL: `${upstream.url}/base` })
  t.after(() => relay.close())
  const res = await fetch(`${relay.url}/headers/x?a=1&b=%20c&a=2`)
  assert.equal(res.status, 404) // the demo upstream has no /base/headers route: the path arrived prefixed
  assert.equal(upstream.requests[0]?.url, '/base/headers/x?a=1&b=%20c&a=2')
})

test('forwarded headers: client address, proto and host set by the relay, hop-by-hop stripped both ways', async (t) => {
  const upstream = await startUpstream((req, res) => {
    req.resume()
    res.writeHead(200, {
      'content-type': 'application/json',
      connection: 'keep-alive, x-hop-response',
      'keep-alive': 'timeout=30',
      'x-hop-response': 'dropped',
      'proxy-authenticate': 'Basic',
      'x-end-to-end': 'kept',
      'x-request-id': 'upstream-made-this-up'
    })
    res.end(JSON.stringify(req.headers))
  })
  t.after(() => upstream.close())
  const relay = await startRelay({ UPSTREAM_URL: upstream.url })
  t.after(() => relay.close())

  const res = await rawRequest(relay.port, [
    'GET /headers HTTP/1.1',
    'Host: relay.example.com',
    'Connection: close, x-hop-request',
    'X-Hop-Request: dropped',
    'X-Forwarded-For: 6.6.6.6',
    'X-Forwarded-Proto: gopher',
    'X-Forwarded-Host: evil.example',
    'Forwarded: for=6.6.6.6',
    'X-Real-IP: 6.6.6.6',
    'Proxy-Authorization: Basic c2VjcmV0',
    'Authorization: Bearer end-to-end',
    'X-Request-Id: client-trace-1',
    '', ''
  ].join('\r\n'))
  assert.equal(res.statusCode, 200)
  const seen = JSON.parse(res.body) as Record<string, string>
  assert.equal(seen['x-forwarded-for'], '127.0.0.1')
  assert.equal(seen['x-forwarded-proto'], 'http')
  assert.equal(seen['x-forwarded-host'], 'relay.example.com')
  assert.equal(seen.host, `127.0.0.1:${upstream.port}`)
  assert.equal(seen['x-request-id'], 'client-trace-1')
  assert.equal(seen.authorization, 'Bearer end-to-end')
  for (const gone of ['x-hop-request', 'proxy-authorization', 'forwarded', 'x-real-ip']) assert.equal(seen[gone], undefined, gone)

  assert.equal(res.headers['x-end-to-end'], 'kept')
  assert.equal(res.headers['x-request-id'], 'client-trace-1')
  for (const gone of ['x-hop-response', 'proxy-authenticate', 'keep-alive']) assert.equal(res.headers[gone], undefined, gone)
})

test('with RELAY_TRUST_PROXY the address a trusted proxy reports is the client address', async (t) => {
  const upstream = await startUpstream()
  t.after(() => upstream.close())
  const relay = await startRelay({ UPSTREAM_URL: upstream.url, RELAY_TRUST_PROXY: '127.0.0.1' })
  t.after(() => relay.close())
  const seen = await (await fetch(`${relay.url}/headers`, { headers: { 'x-forwarded-for': '6.6.6.6, 203.0.113.9', 'x-forwarded-proto': 'https' } })).json() as { headers: Record<string, string> }
  assert.equal(seen.headers['x-forwarded-for'], '203.0.113.9')
  assert.equal(seen.headers['x-forwarded-proto'], 'https')
})

test('absolute-form targets, //host paths and Host games only ever reach the upstream', async (t) => {
  const upstream = await startUpstream()
  t.after(() => upstream.close())
  const relay = await startRelay({ UPSTREAM_URL: upstream.url })
  t.after(() => relay.close())
  const targets: Array<[string, string]> = [
    ['http://169.254.169.254/latest/meta-data', '/latest/meta-data'],
    ['//169.254.169.254/headers', '/169.254.169.254/headers'],
    ['/headers/../headers/./x', '/headers/x'],
    ['/headers/%2e%2e/%2e%2e/etc/passwd', '/etc/passwd']
  ]
  for (const [target, path] of targets) {
    const res = await rawRequest(relay.port, `GET ${target} HTTP/1.1\r\nHost: 169.254.169.254\r\nConnection: close\r\n\r\n`)
    assert.ok(res.statusCode === 200 || res.statusCode === 404, `${target}: ${res.statusCode}`)
    assert.equal(upstream.requests.at(-1)?.url, path, target)
    assert.equal(upstream.requests.at(-1)?.headers.host, `127.0.0.1:${upstream.port}`)
  }
  const asterisk = await rawRequest(relay.port, 'OPTIONS * HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')
  assert.equal(asterisk.statusCode, 400)
  assert.equal(upstream.requests.length, targets.length)
})

test('stray Keep-Alive, Upgrade, TE and Expect headers do not turn into a 500', async (t) => {
  const upstream = await startUpstream()
  t.after(() => upstream.close())
  const relay = await startRelay({ UPSTREAM_URL: upstream.url })
  t.after(() => relay.close())
  const res = await rawRequest(relay.port, [
    'POST /echo HTTP/1.1', 'Host: x', 'Keep-Alive: timeout=5', 'Upgrade: h2c', 'TE: gzip', 'Trailer: x-sum',
    'Content-Type: text/plain', 'Content-Length: 5', 'Connection: close', '', 'hello'
  ].join('\r\n'))
  assert.equal(res.statusCode, 200)
  assert.equal(res.body, 'hello')
  const seen = upstream.requests.at(-1)?.headers ?? {}
  for (const gone of ['keep-alive', 'upgrade', 'te', 'trailer']) assert.equal(seen[gone], undefined, gone)
})

test('every forwarded method reaches the upstream as itself; HEAD gets no body', async (t) => {
  const upstream = await startUpstream((req, res) => {
    req.resume()
    res.writeHead(200, { 'content-type': 'text/plain', 'content-length': '2' })
    res.end('ok')
  })
  t.after(() => upstream.close())
  const relay = await startRelay({ UPSTREAM_URL: upstream.url })
  t.after(() => relay.close())
  for (const method of ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']) {
    const res = await fetch(`${relay.url}/m`, { method, body: ['POST', 'PUT', 'PATCH'].includes(method) ? 'x' : undefined })
    assert.equal(res.status, 200, method)
    assert.equal(await res.text(), method === 'HEAD' ? '' : 'ok', method)
    assert.equal(upstream.requests.at(-1)?.method, method)
  }
})

test('a GET that carries a body is forwarded without it', async (t) => {
  const upstream = await startUpstream()
  t.after(() => upstream.close())
  const relay = await startRelay({ UPSTREAM_URL: upstream.url })
  t.after(() => relay.close())
  const res = await rawRequest(relay.port, 'GET /headers HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello')
  assert.equal(res.statusCode, 200)
  assert.equal(upstream.requests.at(-1)?.headers['content-length'], undefined)
})

test('a POST without a content type is forwarded as is', async (t) => {
  const upstream = await startUpstream()
  t.after(() => upstream.close())
  const relay = await startRelay({ UPSTREAM_URL: upstream.url })
  t.after(() => relay.close())
  const res = await rawRequest(relay.port, 'POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nConnection: close\r\n\r\nabc')
  assert.equal(res.statusCode, 200)
  assert.equal(res.body, 'abc')
})

test('request ids: generated when absent, unique, sent upstream, returned and logged', async (t) => {
  const upstream = await startUpstream()
  t.after(() => upstream.close())
  const relay = await startRelay({ UPSTREAM_URL: upstream.url })
  t.after(() => relay.close())
  const a = await fetch(`${relay.url}/headers`)
  const b = await fetch(`${relay.url}/headers`)
  const idA = a.headers.get('x-request-id') ?? ''
  const idB = b.headers.get('x-request-id') ?? ''
  assert.match(idA, /^[0-9a-f-]{36}$/)
  assert.notEqual(idA, idB)
  assert.equal(((await a.json()) as { headers: Record<string, string> }).headers['x-request-id'], idA)
  await b.arrayBuffer()
  const line = await relay.logs.waitFor((l) => l.reqId === idA)
  assert.equal(line.msg, 'request completed')
  assert.equal(line.path, '/headers')
  assert.equal(line.statusCode, 200)
})

test('keep-alive connections to the upstream are pooled', async (t) => {
  const upstream = await startUpstream()
  t.after(() => upstream.close())
  const relay = await startRelay({ UPSTREAM_URL: upstream.url })
  t.after(() => relay.close())
  for (let i = 0; i < 20; i++) await (await fetch(`${relay.url}/v1/models`)).arrayBuffer()
  assert.equal(upstream.requests.length, 20)
  assert.equal(upstream.connections, 1)
})
