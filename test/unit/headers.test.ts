import { test } from 'node:test'
import assert from 'node:assert/strict'
import { removeHopByHop, toClientResponseHeaders, toUpstreamRequestHeaders } from '../../src/lib/headers.js'

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
  const headers = toClientResponseHeaders({
    connection: 'keep-alive',
    'keep-alive': 'timeout=5',
    'transfer-encoding': 'chunked',
    'x-request-id': 'upstream-id',
    'set-cookie': ['a=1', 'b=2'],
    'content-type': 'text/event-stream'
  }, 'req-1')
  assert.deepEqual(headers, { 'x-request-id': 'req-1', 'set-cookie': ['a=1', 'b=2'], 'content-type': 'text/event-stream' })
})
