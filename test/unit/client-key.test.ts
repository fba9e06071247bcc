import { test } from 'node:test'
import assert from 'node:assert/strict'
import { clientKey } from '../../src/lib/client-key.js'

test('an IPv4 address is its own key', () => {
  assert.equal(clientKey('198.51.100.7'), '198.51.100.7')
})

test('IPv6 addresses are grouped by their /64', () => {
  assert.equal(clientKey('2001:db8:1:2:3:4:5:6'), '2001:db8:1:2::/64')
  assert.equal(clientKey('2001:db8:1:2:ffff:eeee:dddd:cccc'), '2001:db8:1:2::/64')
  assert.equal(clientKey('2001:DB8:1:2::1'), '2001:db8:1:2::/64')
  assert.equal(clientKey('2001:db8::1'), '2001:db8:0:0::/64')
  assert.equal(clientKey('::1'), '0:0:0:0::/64')
  assert.equal(clientKey('fe80::1%eth0'), 'fe80:0:0:0::/64')
  assert.notEqual(clientKey('2001:db8:1:2::1'), clientKey('2001:db8:1:3::1'))
})

test('an IPv4 client seen through a dual-stack socket is that IPv4 client', () => {
  assert.equal(clientKey('::ffff:198.51.100.7'), '198.51.100.7')
  assert.equal(clientKey('::ffff:c633:6407'), '198.51.100.7')
})

test('anything else (an empty address from a client that left) is kept as it is', () => {
  assert.equal(clientKey(''), '')
})
