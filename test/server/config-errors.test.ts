// Invalid configuration stops `node dist/server.js` before it listens: exit code 1 and one line that
// names the variable, the value and what it expects.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawnRelay } from '../helpers/relay.js'

const cases: Array<[Record<string, string>, RegExp]> = [
  [{ RELAY_PORT: 'abc' }, /^invalid configuration: RELAY_PORT="abc": expected an integer from 0 to 65535/],
  [{ RELAY_PORT: '70000' }, /^invalid configuration: RELAY_PORT="70000"/],
  [{ UPSTREAM_URL: 'ftp://x' }, /^invalid configuration: UPSTREAM_URL="ftp:\/\/x": expected an http:\/\/ or https:\/\/ URL/],
  [{ UPSTREAM_URL: 'not a url' }, /^invalid configuration: UPSTREAM_URL="not a url"/],
  [{ RELAY_WORKERS: '0' }, /^invalid configuration: RELAY_WORKERS="0": expected an integer from 1 to 64/],
  [{ RELAY_LOG_LEVEL: 'chatty' }, /^invalid configuration: RELAY_LOG_LEVEL="chatty": expected one of/],
  [{ RELAY_SHUTDOWN_TIMEOUT_SECONDS: '' }, /^invalid configuration: RELAY_SHUTDOWN_TIMEOUT_SECONDS="" \(empty\)/]
]

for (const [env, message] of cases) {
  test(`${JSON.stringify(env)} stops the process with one clear line`, async (t) => {
    const relay = await spawnRelay({ RELAY_WORKERS: '2', ...env }, { ready: 0 })
    t.after(() => relay.stop())
    const { code } = await relay.exited
    assert.equal(code, 1)
    assert.equal(relay.logs.lines.length, 1, relay.logs.raw.join('\n'))
    const [line] = relay.logs.lines
    assert.equal(line?.level, 'fatal')
    assert.match(line?.msg ?? '', message)
    assert.equal(line?.variable, Object.keys(env)[0])
    assert.equal(relay.stderr(), '')
  })
}

test('a secret that is invalid is named, not shown', async (t) => {
  const relay = await spawnRelay({ RELAY_METRICS_TOKEN: 'two words' }, { ready: 0 })
  t.after(() => relay.stop())
  assert.equal((await relay.exited).code, 1)
  assert.match(relay.logs.raw.join('\n'), /RELAY_METRICS_TOKEN=\(a secret of 9 characters, not shown\)/)
  assert.doesNotMatch(relay.logs.raw.join('\n'), /two words/)
})
