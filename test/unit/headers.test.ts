import { test } from 'node:test'
import assert from 'node:assert/strict'
import { removeHopByHop, toClientResponseHead, toUpstreamRequestHeaders } from '../../src/lib/headers.js'

const forwarded = { ip: '198.51.100.7', protocol: 'https', host: 'relay.example.com', requestId: 'req-1', hasBody: true }

test('hop-by-hop headers, and those Connection names, are removed', () => {
  const headers = {
    connection: 'keep-alive, X-Secret-Hop ,upgrade',
    'keep-alive': 'timeout=5',
    'x-secret-hop': '1',
    te: 'trailers',
    trailer: 'x-checksum',
    'transfer-encoding': 'chunked',
    upgrade: 'websocket',
    'proxy-authorization': 'Basic Zm9vOmJhcg==',
    'proxy-authenticate': 'Basic',
    'proxy-connection': 'keep-alive',
    'content-type': 'application/json',
    authorization: 'Bearer end-to-end'
  }
  removeHopByHop(headers)
  assert.deepEqual(headers, { 'content-type': 'application/json', authorization: 'Bearer end-to-end' })
})

test('forwarding headers are overwritten, never appended', () => {
  const headers = toUpstreamRequestHeaders({
    'x-forwarded-for': '1.2.3.4',
    'x-forwarded-proto': 'gopher',
    'x-forwarded-host': 'evil.example',
    forwarded: 'for=1.2.3.4',
    'x-real-ip': '1.2.3.4',
    expect: '100-continue',
    'x-request-id': 'spoofed',
    'content-length': '12'
  }, forwarded)
  assert.deepEqual(headers, {
    'x-forwarded-for': '198.51.100.7',
    'x-forwarded-proto': 'https',
    'x-forwarded-host': 'relay.example.com',
    'x-request-id': 'req-1',
    'content-length': '12'
  })
})

test('a request without a forwarded body loses its framing header', () => {
  const headers = toUpstreamRequestHeaders({ 'content-length': '5' }, { ...forwarded, hasBody: false })
  assert.equal(headers['content-length'], undefined)
})

test('responses lose hop-by-hop headers and carry the request id', () => {
  const raw = [
    'Connection', 'keep-alive, X-Hop', 'Keep-Alive', 'timeout=5', 'Transfer-Encoding', 'chunked', 'X-Hop', 'gone',
    'X-Request-Id', 'upstream-id', 'Set-Cookie', 'a=1', 'Set-Cookie', 'b=2', 'Content-Type', 'text/event-stream'
  ].map((value) => Buffer.from(value, 'latin1'))
  const head = toClientResponseHead(raw, 'req-1', (value) => value)
  assert.deepEqual(head.headers, ['Set-Cookie', 'a=1', 'Set-Cookie', 'b=2', 'Content-Type', 'text/event-stream', 'x-request-id', 'req-1'])
  assert.equal(head.hasContentLength, false)
})

test('response heads: Location-like values go through the rewrite, the declared length is noticed, bytes survive', () => {
  const head = toClientResponseHead(['Location', 'http://gpu/x', 'Content-Location', 'http://gpu/y', 'Content-Length', '3', 'X-Name', 'Zoë'.replace('ë', '\xeb')],
    'req-2', (value) => value.replace('http://gpu', ''))
  assert.deepEqual(head.headers, ['Location', '/x', 'Content-Location', '/y', 'Content-Length', '3', 'X-Name', 'Zo\xeb', 'x-request-id', 'req-2'])
  assert.equal(head.hasContentLength, true)
})
