import { test } from 'node:test'
import assert from 'node:assert/strict'
import { rewriteLocation } from '../../src/lib/redirect.js'

const plain = { origin: 'http://gpu-box:5010', basePath: '' }
const based = { origin: 'http://gpu-box:5010', basePath: '/api' }

test('an absolute URL on the upstream becomes a path on the relay', () => {
  assert.equal(rewriteLocation('http://gpu-box:5010/v1/models/', plain), '/v1/models/')
  assert.equal(rewriteLocation('HTTP://GPU-BOX:5010/v1?x=1#f', plain), '/v1?x=1#f')
  assert.equal(rewriteLocation('//gpu-box:5010/v1', plain), '/v1')
})

test('the base path of UPSTREAM_URL is taken off, as the client never sends it', () => {
  assert.equal(rewriteLocation('http://gpu-box:5010/api/v1/models/', based), '/v1/models/')
  assert.equal(rewriteLocation('http://gpu-box:5010/api', based), '/')
  assert.equal(rewriteLocation('http://gpu-box:5010/api?next=1', based), '/?next=1')
  assert.equal(rewriteLocation('/api/v1/x', based), '/v1/x')
  assert.equal(rewriteLocation('/apiary', based), '/apiary', 'a longer segment is not the base path')
  assert.equal(rewriteLocation('http://gpu-box:5010/elsewhere', based), '/elsewhere', 'outside the base path: still no address')
})

test('other origins, other ports, other schemes and relative references pass unchanged', () => {
  assert.equal(rewriteLocation('https://example.org/docs', plain), 'https://example.org/docs')
  assert.equal(rewriteLocation('http://gpu-box:5011/v1', plain), 'http://gpu-box:5011/v1')
  assert.equal(rewriteLocation('https://gpu-box:5010/v1', plain), 'https://gpu-box:5010/v1')
  assert.equal(rewriteLocation('next/page', plain), 'next/page')
  assert.equal(rewriteLocation('http://[bad', plain), 'http://[bad')
})

test('the default port is the same origin', () => {
  assert.equal(rewriteLocation('http://gpu-box:80/v1', { origin: 'http://gpu-box', basePath: '' }), '/v1')
  assert.equal(rewriteLocation('https://gpu-box/v1', { origin: 'https://gpu-box', basePath: '' }), '/v1')
})
