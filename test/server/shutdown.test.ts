// The drain a rolling update relies on, against the real process and its signals.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { Agent, request } from 'undici'
import { exitWithin, spawnRelay } from '../helpers/relay.js'
import { openStream } from '../helpers/http.js'
import { startUpstream, waitFor } from '../helpers/upstreams.js'

async function get (url: string): Promise<{ status: number, connection: string | undefined, body: string }> {
  const res = await fetch(url, { headers: { connection: 'close' } })
  return { status: res.status, connection: res.headers.get('connection') ?? undefined, body: await res.text() }
}

test('SIGTERM: readiness fails at once, the delay window is served with Connection: close, in-flight streams finish, exit 0', async (t) => {
  const upstream = await startUpstream()
  t.after(() => upstream.close())
  const relay = await spawnRelay({ UPSTREAM_URL: upstream.url, RELAY_SHUTDOWN_DELAY_SECONDS: '1', RELAY_SHUTDOWN_TIMEOUT_SECONDS: '10' })
  t.after(() => relay.stop())

  const stream = await openStream(`${relay.url}/stream?tokens=15&interval=100`)
  await waitFor(() => stream.events.length > 0, 5000, 'the first event')
  const signalledAt = Date.now()
  relay.child.kill('SIGTERM')
  await relay.logs.waitFor((line) => line.msg === 'shutdown requested: draining')

  const health = await get(`${relay.url}/healthz`)
  assert.equal(health.status, 503)
  assert.deepEqual(JSON.parse(health.body), { status: 'terminating' })
  const live = await get(`${relay.url}/livez`)
  assert.equal(live.status, 200)
  // New requests are still served during the delay, and told to reconnect elsewhere.
  const during = await fetch(`${relay.url}/v1/models`)
  assert.equal(during.status, 200)
  assert.equal(during.headers.get('connection'), 'close')
  await during.arrayBuffer()

  const { complete, text } = await stream.done
  assert.equal(complete, true)
  assert.match(text, /data: \[DONE\]/)
  assert.equal(stream.events.length, 16)

  const { code } = await exitWithin(relay, 12_000)
  assert.equal(code, 0)
  assert.ok(Date.now() - signalledAt >= 1000, 'the delay window was honoured')
  await assert.rejects(fetch(`${relay.url}/livez`), 'nothing listens after the exit')
  assert.ok(relay.logs.find((line) => line.msg === 'shutdown complete'))
  assert.ok(relay.logs.find((line) => line.event === 'health_changed' && line.to === 'terminating'))
})

test('a keep-alive connection whose response was under way at SIGTERM is closed when it goes idle, not at the timeout', async (t) => {
  const upstream = await startUpstream()
  t.after(() => upstream.close())
  const relay = await spawnRelay({ UPSTREAM_URL: upstream.url, RELAY_SHUTDOWN_DELAY_SECONDS: '0.2', RELAY_SHUTDOWN_TIMEOUT_SECONDS: '20' })
  t.after(() => relay.stop())
  // A proxy in front keeps its connections alive: the stream's headers promise keep-alive.
  const agent = new Agent({ keepAliveTimeout: 60_000 })
  t.after(() => agent.close())
  const res = await request(`${relay.url}/stream?tokens=10&interval=100`, { dispatcher: agent })
  assert.equal(res.headers.connection, 'keep-alive')
  relay.child.kill('SIGTERM')
  assert.match(await res.body.text(), /data: \[DONE\]/)
  const streamEnded = Date.now()
  const { code } = await exitWithin(relay, 5000)
  assert.equal(code, 0)
  assert.ok(Date.now() - streamEnded < 2000, `exited ${Date.now() - streamEnded} ms after the stream ended`)
})
