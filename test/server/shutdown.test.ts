// The drain a rolling update relies on, against the real process and its signals.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { request, type IncomingMessage } from 'node:http'
import { once } from 'node:events'
import { spawnRelay, type RelayProcess } from '../helpers/relay.js'
import { startUpstream, waitFor } from '../helpers/upstreams.js'

interface Stream { events: string[], done: Promise<{ complete: boolean, text: string }> }

/** Opens an SSE stream on its own connection and collects what arrives. */
async function openStream (url: string): Promise<Stream> {
  const req = request(url, { agent: false })
  req.end()
  const [res] = await once(req, 'response') as [IncomingMessage]
  const events: string[] = []
  let text = ''
  const done = new Promise<{ complete: boolean, text: string }>((resolve) => {
    res.setEncoding('utf8')
    res.on('data', (chunk: string) => {
      text += chunk
      for (const event of chunk.split('\n\n')) if (event.trim() !== '') events.push(event)
    })
    res.on('end', () => resolve({ complete: true, text }))
    res.on('error', () => resolve({ complete: false, text }))
    res.on('close', () => resolve({ complete: res.complete, text }))
  })
  return { events, done }
}

async function get (url: string): Promise<{ status: number, connection: string | undefined, body: string }> {
  const res = await fetch(url, { headers: { connection: 'close' } })
  return { status: res.status, connection: res.headers.get('connection') ?? undefined, body: await res.text() }
}

async function exitWithin (relay: RelayProcess, ms: number): Promise<{ code: number | null, elapsed: number }> {
  const started = Date.now()
  const result = await Promise.race([relay.exited, new Promise<null>((resolve) => setTimeout(() => resolve(null), ms))])
  assert.ok(result !== null, `the relay did not exit within ${ms} ms`)
  return { code: result.code, elapsed: Date.now() - started }
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

test('a second SIGTERM exits at once', async (t) => {
  const upstream = await startUpstream()
  t.after(() => upstream.close())
  const relay = await spawnRelay({ UPSTREAM_URL: upstream.url, RELAY_SHUTDOWN_DELAY_SECONDS: '30', RELAY_SHUTDOWN_TIMEOUT_SECONDS: '30' })
  t.after(() => relay.stop())
  relay.child.kill('SIGTERM')
  await relay.logs.waitFor((line) => line.msg === 'shutdown requested: draining')
  relay.child.kill('SIGTERM')
  const { code, elapsed } = await exitWithin(relay, 3000)
  assert.notEqual(code, 0)
  assert.ok(elapsed < 3000)
  assert.ok(relay.logs.find((line) => line.msg === 'second signal: exiting now'))
})

test('in-flight requests that outlive the shutdown timeout are cut, and the process still exits', async (t) => {
  const upstream = await startUpstream()
  t.after(() => upstream.close())
  const relay = await spawnRelay({ UPSTREAM_URL: upstream.url, RELAY_SHUTDOWN_DELAY_SECONDS: '0.2', RELAY_SHUTDOWN_TIMEOUT_SECONDS: '0.5' })
  t.after(() => relay.stop())
  const stream = await openStream(`${relay.url}/stream?tokens=1000&interval=50`)
  await waitFor(() => stream.events.length > 0, 5000, 'the first event')
  relay.child.kill('SIGTERM')
  const { code, elapsed } = await exitWithin(relay, 5000)
  assert.equal(code, 0)
  assert.ok(elapsed >= 600, `exited after ${elapsed} ms, before delay + timeout`)
  const { complete } = await stream.done
  assert.equal(complete, false)
  assert.ok(relay.logs.find((line) => line.msg === 'shutdown timeout reached: closing the remaining connections'))
})
