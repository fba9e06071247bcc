import { test } from 'node:test'
import assert from 'node:assert/strict'
import * as errors from '../../src/errors.js'
import * as upstream from '../../src/forward/upstream-errors.js'

const constructors = Object.entries({ ...errors, ...upstream }).filter(([name, value]) => typeof value === 'function' && /^[A-Z]/.test(name))

test('every named error has a RELAY_ code, a 4xx/5xx status and a message that names no address', () => {
  assert.ok(constructors.length >= 20, `${constructors.length} errors`)
  const codes = new Set<string>()
  for (const [name, Ctor] of constructors) {
    const error = new (Ctor as new (...args: unknown[]) => errors.RelayError)('X')
    assert.match(error.code, /^RELAY_[A-Z_]+$/, name)
    assert.ok(!codes.has(error.code), `${error.code} is defined twice`)
    codes.add(error.code)
    assert.ok(error.statusCode >= 400 && error.statusCode < 600, name)
    assert.doesNotMatch(error.message, /\d+\.\d+\.\d+\.\d+|localhost|:\d{2,5}\b/, name)
    assert.equal(errors.isRelayError(error), true, name)
  }
})

test('the body every client sees', () => {
  assert.deepEqual(errors.errorBody(503, 'try again'), { statusCode: 503, error: 'Service Unavailable', message: 'try again' })
  assert.deepEqual(errors.errorBody(499, 'x'), { statusCode: 499, error: 'Error', message: 'x' })
  assert.deepEqual(new errors.BodyTooLarge(1024).message, 'The request body exceeds the limit of 1024 bytes')
  assert.deepEqual(errors.withHeaders(new errors.ShuttingDown(), { 'retry-after': 1 }).headers, { 'retry-after': 1 })
  assert.equal(errors.isRelayError(new Error('x')), false)
  assert.equal(errors.isRelayError(Object.assign(new Error('x'), { code: 'FST_ERR_BAD_URL' })), false)
})
