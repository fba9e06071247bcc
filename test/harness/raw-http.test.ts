// The raw HTTP/1.1 and SSE parsing every harness shares (harness/raw-http.ts, harness/sse.ts).
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { ChunkedDecoder, parseHead, parseResponse, responseEnd } from '../../harness/raw-http.js'
import { splitSseEvents } from '../../harness/sse.js'

test('HTTP response heads: status, lower-cased headers, where the head ends', () => {
  assert.deepEqual(parseHead('HTTP/1.1 200 OK\r\nContent-Length: 42\r\n\r\n{}'), { statusCode: 200, headers: { 'content-length': '42' }, headerEnd: 35 })
  const chunked = parseHead('HTTP/1.1 413 Payload Too Large\r\ntransfer-encoding: chunked\r\n')
  assert.equal(chunked.statusCode, 413)
  assert.equal(chunked.headers['content-length'], undefined)
  assert.equal(chunked.headerEnd, -1, 'no blank line yet: the head is not complete')
  assert.ok(Number.isNaN(parseHead('SSH-2.0\r\n\r\n').statusCode), 'not an HTTP status line')
})

test('HTTP response ends: complete with its Content-Length, -1 before, an error without one', () => {
  const response = 'HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}'
  assert.equal(responseEnd(response), response.length)
  assert.equal(responseEnd(response + 'HTTP/1.1 200 OK'), response.length, 'the next response on the connection is not this one')
  assert.equal(responseEnd(response.slice(0, -1)), -1)
  assert.equal(responseEnd('HTTP/1.1 200 OK\r\n'), -1)
  assert.throws(() => responseEnd('HTTP/1.1 200 OK\r\n\r\n'), /without Content-Length/)
})

test('a whole response: the chunked body decoded, and whether it was complete', () => {
  const chunked = parseResponse('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n')
  assert.equal(chunked.statusCode, 200)
  assert.equal(chunked.body, 'abcde')
  assert.equal(chunked.complete, true)
  assert.equal(parseResponse('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n').complete, false, 'no terminating chunk')
  assert.equal(parseResponse('HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nabc').complete, false, 'short of its length')
  assert.ok(Number.isNaN(parseResponse('').statusCode), 'a server that closed without a word')
})

test('SSE: events split on blank lines, a partial event kept for the next chunk', () => {
  assert.deepEqual(splitSseEvents('data: a\n\ndata: b\n\ndata: c'), { events: ['data: a', 'data: b'], rest: 'data: c' })
  assert.deepEqual(splitSseEvents(''), { events: [], rest: '' })
})

test('a chunked body decoded as it arrives, whatever the splits; trailers; a bad size or a missing CRLF refused', () => {
  const wire = '5;ext=1\r\nhello\r\n1a\r\n, a chunk of 26 bytes here\r\n0\r\nx-trailer: 1\r\n\r\n'
  for (const step of [1, 2, 3, 7, wire.length]) {
    const decoder = new ChunkedDecoder()
    let body = ''
    for (let i = 0; i < wire.length; i += step) {
      assert.equal(decoder.done, false)
      body += decoder.push(wire.slice(i, i + step))
    }
    assert.equal(body, 'hello, a chunk of 26 bytes here', `pieces of ${step}`)
    assert.equal(decoder.done, true)
  }
  const unfinished = new ChunkedDecoder()
  assert.equal(unfinished.push('3\r\nabc\r\n0\r\n'), 'abc')
  assert.equal(unfinished.done, false, 'the blank line after the last chunk is still due')
  assert.throws(() => new ChunkedDecoder().push('zz\r\n'), /not a chunk size/)
  assert.throws(() => new ChunkedDecoder().push('2\r\nabcd\r\n'), /no CRLF after a chunk/)
})
