import { test } from 'node:test'
import assert from 'node:assert/strict'
import { DnsCheck } from '../../src/lib/dns-check.js'

test('an IP literal needs no lookup', async () => {
  let lookups = 0
  const check = new DnsCheck('10.0.0.5', { lookup: async () => { lookups++ } })
  assert.equal(check.needed, false)
  assert.deepEqual(await check.check(10), { ok: true })
  assert.equal(lookups, 0)
})

test('results are cached for the ttl', async () => {
  let lookups = 0
  const check = new DnsCheck('gpu-server', { ttlMs: 60_000, lookup: async () => { lookups++ } })
  assert.equal((await check.check(100)).ok, true)
  assert.equal((await check.check(100)).ok, true)
  assert.equal(lookups, 1)
})

test('a failing lookup reports the resolver code', async () => {
  const check = new DnsCheck('gpu-server', { lookup: async () => { throw Object.assign(new Error('nope'), { code: 'ENOTFOUND' }) } })
  assert.deepEqual(await check.check(100), { ok: false, error: 'ENOTFOUND' })
})

test('a slow resolver never holds the probe: the last result stands, or a failure when there is none', async () => {
  let release: () => void = () => {}
  let slow = false
  const check = new DnsCheck('gpu-server', {
    ttlMs: 0,
    lookup: () => slow ? new Promise<void>((resolve) => { release = resolve }) : Promise.resolve()
  })
  slow = true
  const started = Date.now()
  assert.deepEqual(await check.check(50), { ok: false, error: 'ETIMEOUT' })
  assert.ok(Date.now() - started < 1000)
  release()
  await new Promise((resolve) => setTimeout(resolve, 10))
  const result = await check.check(50) // a new slow lookup starts; the finished one stands meanwhile
  assert.equal(result.ok, true)
  release()
})

test('the real resolver fails for a name under .invalid', async () => {
  const result = await new DnsCheck('gpu-server.invalid').check(5000)
  assert.equal(result.ok, false)
  assert.match(result.error ?? '', /^E[A-Z_]+$/)
})
