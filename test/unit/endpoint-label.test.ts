import { test } from 'node:test'
import assert from 'node:assert/strict'
import { EndpointLabeler, OTHER, normaliseEndpointPath } from '../../src/lib/endpoint-label.js'

test('id-like segments become :id, route words stay', () => {
  const cases: Array<[string, string]> = [
    ['/v1/chat/completions', '/v1/chat/completions'],
    ['/v1/jobs/42/result', '/v1/jobs/:id/result'],
    ['/users/123/orders/456?x=1', '/users/:id/orders/:id'],
    ['/v1/jobs/3f2b8c1e-9d4a-4b6f-8e2a-1c5d7e9f0a1b', '/v1/jobs/:id'],
    ['/blobs/0123456789abcdef0123', '/blobs/:id'],
    ['/v1/chat/completions/chatcmpl-8fZ3kQxYz12AbCdEf9', '/v1/chat/completions/:id'],
    ['/v1/models/gpt-4o-mini', '/v1/models/gpt-4o-mini'],
    ['/v2/embeddings', '/v2/embeddings'],
    ['/', '/'],
    ['/a/', '/a/']
  ]
  for (const [path, label] of cases) assert.equal(normaliseEndpointPath(path), label, path)
})

test('a path too long to be a route is "other"', () => {
  assert.equal(normaliseEndpointPath('/' + 'segment/'.repeat(30)), OTHER)
})

test('the cap counts distinct proxied labels per process; repeats and ids do not use it up', () => {
  const labeler = new EndpointLabeler(2)
  assert.equal(labeler.label('/a'), '/a')
  assert.equal(labeler.label('/b/1'), '/b/:id')
  assert.equal(labeler.label('/b/2?x'), '/b/:id')
  assert.equal(labeler.label('/a?again'), '/a')
  assert.equal(labeler.label('/c'), OTHER)
  assert.equal(labeler.label('/d'), OTHER)
  assert.equal(labeler.label('/b/99'), '/b/:id')
})

test('random paths keep the label set bounded, memo or not', () => {
  const labeler = new EndpointLabeler(100, 16)
  const labels = new Set<string>()
  for (let i = 0; i < 5000; i++) labels.add(labeler.label(`/x${i.toString(36)}y/z`))
  assert.ok(labels.size <= 101, `${labels.size} labels`)
  assert.ok(labels.has(OTHER))
})

test('a cap of 0 sends every proxied path to "other"', () => {
  assert.equal(new EndpointLabeler(0).label('/v1/models'), OTHER)
})

test('a target that is not a path is "unmatched" and uses no slot', () => {
  const labeler = new EndpointLabeler(1)
  assert.equal(labeler.label('*'), 'unmatched')
  assert.equal(labeler.label('/a'), '/a')
})
