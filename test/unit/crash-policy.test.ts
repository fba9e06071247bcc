import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createCrashPolicy } from '../../src/primary.js'

test('a worker that dies after listening is replaced with a growing backoff', () => {
  const policy = createCrashPolicy()
  assert.equal(policy.onCrash(0, true), 250)
  assert.equal(policy.onCrash(1000, true), 500)
  assert.equal(policy.onCrash(2000, true), 1000)
})

test('three workers in a row that never listened: give up (e.g. the port is taken)', () => {
  const policy = createCrashPolicy()
  assert.notEqual(policy.onCrash(0, false), undefined)
  assert.notEqual(policy.onCrash(300, false), undefined)
  assert.equal(policy.onCrash(900, false), undefined)
})

test('one that listened resets the start-up count', () => {
  const policy = createCrashPolicy()
  policy.onCrash(0, false)
  policy.onCrash(100, false)
  assert.notEqual(policy.onCrash(200, true), undefined)
  assert.notEqual(policy.onCrash(300, false), undefined)
})

test('ten crashes within a minute: give up; spread out, they are tolerated', () => {
  const crashing = createCrashPolicy()
  for (let i = 0; i < 9; i++) assert.notEqual(crashing.onCrash(i * 1000, true), undefined)
  assert.equal(crashing.onCrash(9500, true), undefined)

  const occasional = createCrashPolicy()
  for (let i = 0; i < 30; i++) assert.notEqual(occasional.onCrash(i * 61_000, true), undefined)
})
