import { test } from 'node:test'
import assert from 'node:assert/strict'
import { requestIdFrom } from '../../src/lib/request-id.js'

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/

test('a sane client id is kept', () => {
  assert.equal(requestIdFrom('abc-123_X.y:z'), 'abc-123_X.y:z')
  assert.equal(requestIdFrom('a'.repeat(128)), 'a'.repeat(128))
})

test('anything else gets a fresh UUID', () => {
  for (const bad of [undefined, '', 'a'.repeat(129), 'has space', 'semi;colon', '<script>', 'ünïcode', ['a', 'b']]) {
    assert.match(requestIdFrom(bad), UUID, String(bad))
  }
  assert.notEqual(requestIdFrom(undefined), requestIdFrom(undefined))
})
