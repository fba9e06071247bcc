import { test } from 'node:test'
import assert from 'node:assert/strict'
import { classifyUpstreamError, isAbort } from '../../src/forward/upstream-errors.js'

function error (code: string, cause?: unknown): Error {
  return Object.assign(new Error(code), { code, cause })
}

test('each failure maps to its reason and status', () => {
  const cases: Array<[unknown, string, number]> = [
    [error('ECONNREFUSED'), 'connect', 502],
    [error('FST_REPLY_FROM_SERVICE_UNAVAILABLE', error('ENOTFOUND')), 'dns', 502],
    [error('EAI_AGAIN'), 'dns', 502],
    [error('UND_ERR_CONNECT_TIMEOUT'), 'connect', 504],
    [error('EHOSTUNREACH'), 'connect', 502],
    [error('DEPTH_ZERO_SELF_SIGNED_CERT'), 'connect', 502],
    [error('ERR_TLS_CERT_ALTNAME_INVALID'), 'connect', 502],
    [error('FST_REPLY_FROM_GATEWAY_TIMEOUT', error('UND_ERR_HEADERS_TIMEOUT')), 'timeout', 504],
    [error('UND_ERR_BODY_TIMEOUT'), 'timeout', 504],
    [error('ECONNRESET'), 'reset', 502],
    [error('UND_ERR_SOCKET'), 'reset', 502],
    [error('FST_REPLY_FROM_INTERNAL_SERVER_ERROR', error('HPE_INVALID_CONSTANT')), 'reset', 502],
    [error('FST_REPLY_FROM_INTERNAL_SERVER_ERROR', Object.assign(new Error('Invalid status code'), { name: 'HTTPParserError' })), 'reset', 502],
    [new Error('something odd'), 'reset', 502]
  ]
  for (const [err, reason, status] of cases) {
    const failure = classifyUpstreamError(err)
    assert.equal(failure.reason, reason, String(err))
    assert.equal(failure.statusCode, status, String(err))
  }
})

test('a malformed response says so', () => {
  const parserError = Object.assign(new Error('Invalid status code'), { name: 'HTTPParserError' })
  assert.equal(classifyUpstreamError(error('FST_REPLY_FROM_INTERNAL_SERVER_ERROR', parserError)).message, 'The upstream server sent an invalid response')
})

test('the innermost code is reported for the log', () => {
  assert.equal(classifyUpstreamError(error('FST_REPLY_FROM_SERVICE_UNAVAILABLE', error('ENOTFOUND'))).code, 'ENOTFOUND')
})

test('client messages never carry addresses', () => {
  const failure = classifyUpstreamError(Object.assign(new Error('connect ECONNREFUSED 10.1.2.3:5010'), { code: 'ECONNREFUSED' }))
  assert.doesNotMatch(failure.message, /10\.1\.2\.3|5010/)
})

test('aborts are recognised through wrappers', () => {
  assert.equal(isAbort(error('FST_REPLY_FROM_INTERNAL_SERVER_ERROR', error('UND_ERR_ABORTED'))), true)
  assert.equal(isAbort(Object.assign(new Error('aborted'), { name: 'AbortError' })), true)
  assert.equal(isAbort(error('ECONNRESET')), false)
})
