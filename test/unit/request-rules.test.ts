import { test } from 'node:test'
import assert from 'node:assert/strict'
import { expectsContinue, refusalOf, type RequestShape } from '../../src/lib/request-rules.js'

const base: RequestShape = { method: 'POST', url: '/v1/chat/completions', httpVersion: '1.1', rawHeaders: ['Host', 'relay.example'] }
const withHeaders = (...rawHeaders: string[]): RequestShape => ({ ...base, rawHeaders: ['Host', 'relay.example', ...rawHeaders] })

test('an ordinary request passes', () => {
  assert.equal(refusalOf(base, 100), undefined)
  assert.equal(refusalOf(withHeaders('Transfer-Encoding', 'chunked', 'Expect', '100-Continue'), 100), undefined)
  assert.equal(refusalOf({ ...base, httpVersion: '1.0', rawHeaders: [] }, 100), undefined, 'HTTP/1.0 needs no Host')
})

test('more header fields than the limit are refused, at the limit they pass', () => {
  const fields = (n: number): string[] => Array.from({ length: n - 1 }, (_, i) => [`x-${i}`, '1']).flat()
  assert.equal(refusalOf(withHeaders(...fields(100)), 100), undefined)
  assert.deepEqual(refusalOf(withHeaders(...fields(101)), 100), { rule: 'too-many-headers', limit: 100 })
})

test('targets that are not a path, CONNECT, and Host trouble', () => {
  assert.deepEqual(refusalOf({ ...base, url: '*' }, 100), { rule: 'target' })
  assert.deepEqual(refusalOf({ ...base, method: 'CONNECT', url: 'gpu:443' }, 100), { rule: 'method' })
  assert.deepEqual(refusalOf({ ...base, rawHeaders: [] }, 100), { rule: 'missing-host' })
  assert.deepEqual(refusalOf(withHeaders('HOST', 'other.example'), 100), { rule: 'duplicate-host' })
})

test('transfer codings: chunked alone passes, a final coding other than chunked is bad framing, others before it are not implemented', () => {
  assert.deepEqual(refusalOf(withHeaders('Transfer-Encoding', 'xchunked'), 100), { rule: 'framing' })
  assert.deepEqual(refusalOf(withHeaders('Transfer-Encoding', 'chunked, gzip'), 100), { rule: 'framing' })
  assert.deepEqual(refusalOf(withHeaders('Transfer-Encoding', 'gzip, chunked'), 100), { rule: 'transfer-coding' })
  // Two fields are one list (RFC 9110 §5.3).
  assert.deepEqual(refusalOf(withHeaders('Transfer-Encoding', 'gzip', 'Transfer-Encoding', 'chunked'), 100), { rule: 'transfer-coding' })
  assert.equal(refusalOf(withHeaders('Transfer-Encoding', ' Chunked '), 100), undefined)
})

test('only 100-continue is an expectation the relay meets', () => {
  assert.deepEqual(refusalOf(withHeaders('Expect', 'something-else'), 100), { rule: 'expectation' })
  assert.equal(expectsContinue({ expect: '100-continue' }), true)
  assert.equal(expectsContinue({ expect: ' 100-CONTINUE ' }), true)
  assert.equal(expectsContinue({}), false)
  assert.equal(expectsContinue({ expect: 'x' }), false)
})
