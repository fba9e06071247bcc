// RELAY_REDIS_URL: the rate limit shared by every relay process and replica, through a real Redis, and
// a Redis that dies never takes the relay with it.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawnRelay, type RelayProcess } from '../helpers/relay.js'
import { startUpstream, waitFor } from '../helpers/upstreams.js'
import { requestAs } from '../helpers/clients.js'
import { metricsText } from '../helpers/metrics.js'
import { REDIS_AVAILABLE, startRedis } from '../helpers/redis.js'

// CI installs redis-server and sets this, so a missing one fails there instead of skipping.
const required = process.env.RELAY_TEST_REQUIRE_TOOLS === '1'
const skip = !REDIS_AVAILABLE && !required ? 'redis-server is not installed (apt-get install redis-server)' : false
const PASSWORD = 'redis-secret-7f3a'

async function statuses (relays: RelayProcess[], ip: string, count: number): Promise<number[]> {
  const seen: number[] = []
  for (let i = 0; i < count; i++) seen.push((await requestAs(ip, `${(relays[i % relays.length] as RelayProcess).url}/v1/models`)).status)
  return seen
}

test('two relays with one Redis share one rate limit; Redis dying keeps requests flowing; Redis back restores the shared limit', { skip }, async (t) => {
  assert.ok(REDIS_AVAILABLE, 'redis-server is required (RELAY_TEST_REQUIRE_TOOLS=1) but not installed: apt-get install redis-server')
  const redis = await startRedis(PASSWORD)
  t.after(() => redis.stop())
  const upstream = await startUpstream()
  t.after(() => upstream.close())
  const env = { UPSTREAM_URL: upstream.url, RELAY_TRUST_PROXY: '127.0.0.1', RELAY_REDIS_URL: redis.url, RELAY_RATE_LIMIT: '4', RELAY_RATE_LIMIT_WINDOW_SECONDS: '30' }
  const a = await spawnRelay(env)
  t.after(() => a.stop())
  const b = await spawnRelay({ ...env, RELAY_WORKERS: '2' }, { ready: 2 })
  t.after(() => b.stop())

  // Alternating between the two: 4 in the window for both together.
  assert.deepEqual(await statuses([a, b], '198.51.100.1', 7), [200, 200, 200, 200, 429, 429, 429])

  await redis.stop()
  // Fails open: the GPU queue still protects the GPU; readiness is not Redis' business.
  assert.deepEqual(await statuses([a, b], '198.51.100.1', 6), [200, 200, 200, 200, 200, 200])
  for (const relay of [a, b]) assert.equal((await fetch(`${relay.url}/healthz`)).status, 200)
  await a.logs.waitFor((l) => l.msg.startsWith('rate-limit store unreachable'), 5000)
  assert.equal(a.logs.lines.filter((l) => l.msg.startsWith('rate-limit store unreachable')).length, 1, 'the outage is logged once')
  assert.ok(Number(/^relay_rate_limit_store_errors_total (\d+)/m.exec(await metricsText(a.url))?.[1]) >= 1, 'the failures are counted')

  await redis.start()
  // Each process has its own connection: b's two workers both have to be back.
  const recovered = (relay: RelayProcess): number => relay.logs.lines.filter((l) => l.msg.startsWith('rate-limit store reachable again')).length
  await waitFor(() => recovered(a) === 1 && recovered(b) === 2, 10_000, 'every process to reconnect to Redis')
  // A fresh Redis has no counts: a new client gets its 4, shared again across both relays.
  assert.deepEqual(await statuses([a, b], '198.51.100.2', 6), [200, 200, 200, 200, 429, 429])
  assert.equal(a.logs.lines.filter((l) => l.msg.startsWith('rate-limit store reachable again')).length, 1, 'the recovery is logged once')

  for (const relay of [a, b]) {
    assert.doesNotMatch(relay.logs.raw.join('\n') + relay.stderr(), new RegExp(PASSWORD), 'the Redis password never reaches a log')
  }
})
