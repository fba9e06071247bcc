import { test } from 'node:test'
import assert from 'node:assert/strict'
import { normaliseRequestTarget } from '../../src/lib/request-target.js'

const cases: Array<[string, string]> = [
  ['/v1/chat/completions', '/v1/chat/completions'],
  ['/v1/models?limit=5&x=%20y', '/v1/models?limit=5&x=%20y'],
  ['/', '/'],
  // absolute-form: only the path survives, the relay never dials another host
  ['http://other-host/x?y=1', '/x?y=1'],
  ['HTTPS://other-host:8443/a/b', '/a/b'],
  ['http://other-host', '/'],
  ['http://other-host?q', '/?q'],
  // "//host" is a path, not an authority
  ['//other-host/x', '/other-host/x'],
  ['///x//y', '/x/y'],
  // dot segments, plain and percent-encoded
  ['/a/./b', '/a/b'],
  ['/a/../b', '/b'],
  ['/../../etc/passwd', '/etc/passwd'],
  ['/%2e%2e/%2E%2e/etc/passwd', '/etc/passwd'],
  ['/a/.%2e/b', '/b'],
  ['/a/b/..', '/a/'],
  ['/a/b/.', '/a/b/'],
  ['/a/..', '/'],
  ['/..', '/'],
  ['/a//b/', '/a/b/'],
  ['/.well-known/x', '/.well-known/x'],
  ['/a/..b/c', '/a/..b/c'],
  // the query is never touched, even when it holds dots or slashes
  ['/a/../b?next=/../x', '/b?next=/../x'],
  // a fragment is not part of the target
  ['/a/./b#frag', '/a/b'],
  // not origin- or absolute-form: left for the router to refuse
  ['*', '*'],
  ['ftp://x/y', 'ftp://x/y']
]

for (const [target, expected] of cases) {
  test(`${target} -> ${expected}`, () => {
    assert.equal(normaliseRequestTarget(target), expected)
  })
}
