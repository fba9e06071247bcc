import { test } from 'node:test'
import assert from 'node:assert/strict'
import { ChunkedReader, parseResponseHead, ResponseError } from '../../src/lib/h1-response.js'

const head = (text: string, method = 'GET'): ReturnType<typeof parseResponseHead> => parseResponseHead(Buffer.from(text, 'latin1'), method, 16 * 1024)

function refused (text: string, code = 'RELAY_INVALID_RESPONSE'): void {
  assert.throws(() => head(text), (err: unknown) => err instanceof ResponseError && err.code === code, JSON.stringify(text))
}

test('a head is read once it is complete, with its framing', () => {
  assert.equal(head('HTTP/1.1 200 OK\r\nContent-Length: 5\r\n'), undefined)
  const parsed = head('HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nhello')
  assert.equal(parsed?.length, 64)
  assert.deepEqual(parsed?.head, {
    minorVersion: 1, statusCode: 200, rawHeaders: ['Content-Type', 'text/plain', 'Content-Length', '5'], framing: 'length', contentLength: 5, keepAlive: true, keepAliveTimeoutMs: undefined
  })
})

test('framing: chunked, until close, none', () => {
  assert.equal(head('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n')?.head.framing, 'chunked')
  assert.equal(head('HTTP/1.1 200 OK\r\nTransfer-Encoding: Chunked\r\n\r\n')?.head.framing, 'chunked')
  const close = head('HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\r\n')?.head
  assert.equal(close?.framing, 'close')
  assert.equal(close?.keepAlive, false)
  for (const [text, method] of [['HTTP/1.1 204 No Content\r\nContent-Length: 9\r\n\r\n', 'GET'], ['HTTP/1.1 304 Not Modified\r\nContent-Length: 9\r\n\r\n', 'GET'],
    ['HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n', 'HEAD'], ['HTTP/1.1 102 Processing\r\n\r\n', 'GET'], ['HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n', 'GET']]) {
    assert.equal(head(text as string, method)?.head.framing, 'none', text)
  }
})

test('keep-alive: HTTP/1.1 unless Connection: close; never HTTP/1.0; the upstream\'s timeout is read', () => {
  assert.equal(head('HTTP/1.1 200 OK\r\nConnection: keep-alive, Close\r\nContent-Length: 1\r\n\r\n')?.head.keepAlive, false)
  assert.equal(head('HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 1\r\n\r\n')?.head.keepAlive, false)
  assert.equal(head('HTTP/1.1 200 OK\r\nKeep-Alive: timeout=5, max=100\r\nContent-Length: 1\r\n\r\n')?.head.keepAliveTimeoutMs, 5000)
})

test('agreeing Content-Length values are one; conflicting ones, both framings, other codings are refused', () => {
  assert.equal(head('HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 3, 3\r\n\r\n')?.head.contentLength, 3)
  refused('HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n')
  refused('HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n')
  refused('HTTP/1.1 200 OK\r\nContent-Length: 0x10\r\n\r\n')
  refused('HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n')
  refused('HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n')
  refused('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, identity\r\n\r\n')
})

test('malformed heads are refused', () => {
  for (const text of [
    'HTTP/2 200 OK\r\n\r\n', 'HTTP/1.1 20 OK\r\n\r\n', 'HTTP/1.1 abc\r\n\r\n', 'ICY 200 OK\r\n\r\n',
    'HTTP/1.1 200 OK\r\nNo-Colon\r\n\r\n', 'HTTP/1.1 200 OK\r\n: empty-name\r\n\r\n', 'HTTP/1.1 200 OK\r\nBad Name: x\r\n\r\n',
    'HTTP/1.1 200 OK\r\nX: a\r\n folded\r\n\r\n', 'HTTP/1.1 200 OK\r\nX: a\nY: b\r\n\r\n', 'HTTP/1.1 200 OK\r\nX: a\x00b\r\n\r\n'
  ]) refused(text)
})

test('a head over the limit is refused, also before it is complete', () => {
  refused(`HTTP/1.1 200 OK\r\nX: ${'a'.repeat(20_000)}`, 'RELAY_HEADERS_OVERFLOW')
  refused(`HTTP/1.1 200 OK\r\nX: ${'a'.repeat(20_000)}\r\n\r\n`, 'RELAY_HEADERS_OVERFLOW')
})

function readAll (reader: ChunkedReader, ...inputs: string[]): { out: string, done: boolean, extra: number } {
  let out = ''
  let done = false
  let extra = 0
  for (const input of inputs) {
    const result = reader.read(Buffer.from(input, 'latin1'))
    out += result.bytes.map((b) => b.toString('latin1')).join('')
    done = result.done
    extra = result.extra
  }
  return { out, done, extra }
}

test('passthrough hands back every chunk as it was framed, and keeps back the last chunk and trailers', () => {
  const body = '5\r\nhello\r\n1;ext=1\r\n!\r\n0\r\nX-Sum: 1\r\n\r\n'
  assert.deepEqual(readAll(new ChunkedReader(true), body), { out: '5\r\nhello\r\n1;ext=1\r\n!\r\n', done: true, extra: 0 })
  assert.deepEqual(readAll(new ChunkedReader(false), body), { out: 'hello!', done: true, extra: 0 })
})

test('split anywhere, the bytes come out the same, and a size line is never handed back half', () => {
  const body = 'a\r\n0123456789\r\n10\r\nabcdefghijklmnop\r\n0\r\n\r\n'
  for (let cut = 1; cut < body.length; cut++) {
    for (const passthrough of [true, false]) {
      const reader = new ChunkedReader(passthrough)
      const first = reader.read(Buffer.from(body.slice(0, cut), 'latin1'))
      const second = reader.read(Buffer.from(body.slice(cut), 'latin1'))
      const out = [...first.bytes, ...second.bytes].map((b) => b.toString('latin1')).join('')
      assert.equal(out, passthrough ? 'a\r\n0123456789\r\n10\r\nabcdefghijklmnop\r\n' : '0123456789abcdefghijklmnop', `cut at ${cut}`)
      assert.equal(second.done, true, `cut at ${cut}`)
      if (passthrough) {
        // Never a byte of the last chunk: the client's response ends with the relay's own.
        const sent = first.bytes.map((b) => b.toString('latin1')).join('')
        assert.ok(sent.length <= body.lastIndexOf('0\r\n\r\n'), `cut at ${cut}: ${JSON.stringify(sent)}`)
      }
    }
  }
})

test('one byte at a time works too', () => {
  const body = '3\r\nabc\r\n0\r\n\r\n'
  const reader = new ChunkedReader(true)
  let out = ''
  for (const ch of body) out += reader.read(Buffer.from(ch)).bytes.map((b) => b.toString()).join('')
  assert.equal(out, '3\r\nabc\r\n')
  assert.equal(reader.done, true)
})

test('bytes after the end are reported, never handed back', () => {
  const result = readAll(new ChunkedReader(true), '1\r\na\r\n0\r\n\r\nHTTP/1.1 200 OK\r\n\r\n')
  assert.equal(result.out, '1\r\na\r\n')
  assert.equal(result.done, true)
  assert.equal(result.extra, 19)
})

test('malformed framing throws', () => {
  for (const body of ['\r\n', 'g\r\n', '3\nabc\r\n', '3\r\nabcd\r\n', '3\r\nabc\n', '3\r\nabc\r\n0\r\nX\n\r\n', '1000000000000\r\n', `1;${'e'.repeat(2000)}\r\n`, '3\r\nab\x00\r\n0\r\n\r\n'.replace('\x00', 'cZ')]) {
    assert.throws(() => readAll(new ChunkedReader(true), body), ResponseError, JSON.stringify(body))
  }
})

test('whitespace before an extension is allowed, a size with only whitespace is not', () => {
  assert.equal(readAll(new ChunkedReader(false), '3 \r\nabc\r\n3\t;x\r\ndef\r\n0\r\n\r\n').out, 'abcdef')
  assert.throws(() => readAll(new ChunkedReader(false), ' 3\r\nabc\r\n'), ResponseError)
})
