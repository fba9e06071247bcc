// The relay's own bad days: a worker killed under load, a rollout (SIGTERM) under load, an impatient
// second signal, and requests that outlive the shutdown timeout.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { setTimeout as sleep } from 'node:timers/promises'
import { exitWithin, spawnRelay, type RelayProcess } from '../helpers/relay.js'
import { startUpstream, waitFor } from '../helpers/upstreams.js'
import { connect } from 'node:net'
import { once } from 'node:events'
import { openStream, readUntilClose } from '../helpers/http.js'
import { describeFailures, runLoad } from '../../harness/load.js'

test('a worker killed with SIGKILL under load: only its own requests fail, it is replaced, metrics keep answering', async (t) => {
  const upstream = await startUpstream()
  t.after(() => upstream.close())
  const relay = await spawnRelay({ UPSTREAM_URL: upstream.url, RELAY_WORKERS: '2' }, { ready: 2 })
  t.after(() => relay.stop())
  const [victim, survivor] = relay.logs.lines.filter((line) => line.msg === 'relay ready').map((line) => Number(line.pid))

  const load = runLoad({ url: relay.url, concurrency: 20, durationMs: 4000, mix: { get: 1, post: 1 }, timeoutMs: 3000 })
  await sleep(1000)
  const killedAt = performance.now()
  process.kill(victim as number, 'SIGKILL')
  // Once the primary knows, /metrics answers at once, while the replacement is still starting.
  await relay.logs.waitFor((line) => line.msg === 'worker died unexpectedly: replacing it' && line.workerPid === victim)
  const metricsDuringRecovery = await fetch(`${relay.url}/metrics`, { signal: AbortSignal.timeout(5000) })
  const result = await load

  assert.equal(metricsDuringRecovery.status, 200, 'the primary keeps answering /metrics')
  assert.ok(result.outcomes.length > 200, `${result.outcomes.length} requests`)
  // What failed was in flight on the killed worker (or handed to it as it died), never on the survivor.
  const servedBySurvivor = new Set(relay.logs.lines.filter((line) => line.pid === survivor && typeof line.reqId === 'string').map((line) => line.reqId))
  for (const failure of result.failures) {
    assert.ok(!servedBySurvivor.has(failure.id), `request ${failure.id} failed on the surviving worker: ${describeFailures([failure])}`)
    assert.ok(failure.startedAt < killedAt + 500, `request ${failure.id} started ${(failure.startedAt - killedAt).toFixed(0)} ms after the kill and failed`)
  }
  assert.ok(result.failures.length <= 20, `${result.failures.length} failures: ${describeFailures(result.failures)}`)
  const afterKill = result.outcomes.filter((o) => o.startedAt > killedAt + 500)
  assert.ok(afterKill.length > 50 && afterKill.every((o) => o.status === 200 && o.incomplete !== true))

  await waitFor(() => relay.logs.lines.filter((line) => line.msg === 'relay ready').length === 3, 10_000, 'the replacement worker')
  assert.ok(relay.logs.find((line) => line.msg === 'worker died unexpectedly: replacing it' && line.workerPid === victim))
  const metrics = await (await fetch(`${relay.url}/metrics`)).text()
  assert.match(metrics, /^relay_http_requests_total\{method="GET",endpoint="\/v1\/models",status="200"\} \d+$/m)
})

test('SIGTERM under load (50 keep-alive clients, 10 SSE streams): nothing accepted fails, every stream completes, exit 0', async (t) => {
  const upstream = await startUpstream()
  t.after(() => upstream.close())
  const delaySeconds = 1
  const timeoutSeconds = 10
  const relay = await spawnRelay({
    UPSTREAM_URL: upstream.url,
    RELAY_WORKERS: '2',
    RELAY_SHUTDOWN_DELAY_SECONDS: String(delaySeconds),
    RELAY_SHUTDOWN_TIMEOUT_SECONDS: String(timeoutSeconds)
  }, { ready: 2 })
  t.after(() => relay.stop())

  const streams = await Promise.all(Array.from({ length: 10 }, async () => await openStream(`${relay.url}/stream?tokens=30&interval=100`)))
  const load = runLoad({ url: relay.url, concurrency: 50, durationMs: (delaySeconds + 2) * 1000 + 500, mix: { get: 2, post: 1 }, timeoutMs: 5000 })
  await sleep(500)
  relay.child.kill('SIGTERM')
  const [result, exit, ...ends] = await Promise.all([load, exitWithin(relay, (delaySeconds + timeoutSeconds + 3) * 1000), ...streams.map(async (s) => await s.done)])

  assert.equal(exit.code, 0)
  for (const end of ends) {
    assert.equal(end.complete, true)
    assert.match(end.text, /data: \[DONE\]\n\n$/)
  }
  const ok = result.outcomes.filter((o) => o.status === 200 && o.incomplete !== true)
  assert.ok(ok.length > 100, `${ok.length} requests served`)
  // Every request a worker read was answered in full: none of them is among the failures.
  const seen = new Set(relay.logs.lines.map((line) => line.reqId).filter((id) => id !== undefined))
  const failedAfterAccept = result.failures.filter((f) => seen.has(f.id))
  assert.deepEqual(failedAfterAccept, [], describeFailures(failedAfterAccept))
  // What failed never reached a worker: refused once the listener closed, or reset while still in
  // the kernel's accept queue at that instant. Never a 5xx, a truncated body or a hang.
  const unexpected = result.failures.filter((f) => !['ECONNREFUSED', 'ECONNRESET', 'UND_ERR_SOCKET'].includes(f.error ?? ''))
  assert.deepEqual(unexpected, [], describeFailures(unexpected))
  assert.equal(relay.logs.lines.filter((line) => line.msg === 'shutdown complete').length, 2)
})

test('a connection accepted before the listener closed is served, even when its request arrives after', async (t) => {
  const upstream = await startUpstream()
  t.after(() => upstream.close())
  const relay = await spawnRelay({ UPSTREAM_URL: upstream.url, RELAY_SHUTDOWN_DELAY_SECONDS: '0' })
  t.after(() => relay.stop())
  const socket = connect(relay.port, '127.0.0.1')
  await once(socket, 'connect')
  await sleep(100) // accepted by the relay, nothing sent yet
  relay.child.kill('SIGTERM')
  await relay.logs.waitFor((line) => line.msg === 'shutdown requested: draining')
  await sleep(100) // the listener is closed by now
  await assert.rejects(fetch(`${relay.url}/livez`), 'new connections are refused')
  socket.write('GET /v1/models HTTP/1.1\r\nHost: x\r\n\r\n')
  const res = await readUntilClose(socket, 5000)
  assert.equal(res.statusCode, 200)
  assert.equal(res.headers.connection, 'close')
  assert.equal(res.complete, true)
  assert.equal((await exitWithin(relay, 5000)).code, 0)
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

test('a second SIGTERM to a cluster primary stops the workers at once', async (t) => {
  const upstream = await startUpstream()
  t.after(() => upstream.close())
  const relay = await spawnRelay({ UPSTREAM_URL: upstream.url, RELAY_WORKERS: '2', RELAY_SHUTDOWN_DELAY_SECONDS: '30' }, { ready: 2 })
  t.after(() => relay.stop())
  const workers = relay.logs.lines.filter((line) => line.msg === 'relay ready').map((line) => Number(line.pid))
  relay.child.kill('SIGTERM')
  await waitFor(() => relay.logs.lines.filter((line) => line.msg === 'shutdown requested: draining').length === 2, 5000, 'both workers draining')
  relay.child.kill('SIGTERM')
  const { code } = await exitWithin(relay, 3000)
  assert.notEqual(code, 0)
  await waitFor(() => workers.every((pid) => { try { process.kill(pid, 0); return false } catch { return true } }), 3000, 'the workers to be gone')
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

// Keyed to what the process has logged, not to wall-clock delays: a signal in the first few
// milliseconds, before Node.js runs any of the relay's code, kills any Node.js process.
const EARLY_MOMENTS: Record<string, (relay: RelayProcess) => Promise<unknown>> = {
  'as the primary starts the workers': async (relay) => await relay.logs.waitFor((line) => line.msg === 'starting workers', 5000),
  'while the workers load': async (relay) => {
    await relay.logs.waitFor((line) => line.msg === 'starting workers', 5000)
    await sleep(150)
  },
  'when one worker is ready and the other may not be': async (relay) => await relay.logs.waitFor((line) => line.msg === 'relay ready', 5000)
}

for (const [when, moment] of Object.entries(EARLY_MOMENTS)) {
  test(`SIGTERM ${when}, before the workers listen: they drain anyway, exit 0, nothing is killed`, async (t) => {
    const upstream = await startUpstream()
    t.after(() => upstream.close())
    const relay = await spawnRelay({
      UPSTREAM_URL: upstream.url,
      RELAY_WORKERS: '2',
      RELAY_SHUTDOWN_DELAY_SECONDS: '0.5',
      RELAY_SHUTDOWN_TIMEOUT_SECONDS: '1'
    }, { ready: 0 })
    t.after(() => relay.stop())
    await moment(relay)
    relay.child.kill('SIGTERM')
    // Well within delay + timeout + the primary's 10 s backstop, after which it would SIGKILL them.
    const { code } = await exitWithin(relay, 6000)
    assert.equal(code, 0, relay.logs.raw.join('\n'))
    assert.equal(relay.logs.find((line) => line.msg === 'workers did not stop in time: killing them'), undefined)
    const stopped = relay.logs.lines.filter((line) => line.msg === 'worker stopped')
    assert.equal(stopped.length, 2)
    assert.ok(stopped.every((line) => line.code === 0), JSON.stringify(stopped))
  })
}

test('at the shutdown timeout a request still waiting for the upstream gets 503, a stream is cut; both are logged', async (t) => {
  const upstream = await startUpstream((req, res) => {
    req.resume()
    if (req.url === '/thinking') return // the GPU never answers in time
    res.writeHead(200, { 'content-type': 'text/event-stream' })
    const timer = setInterval(() => res.write('data: token\n\n'), 50)
    res.on('close', () => clearInterval(timer))
  })
  t.after(() => upstream.close())
  const relay = await spawnRelay({ UPSTREAM_URL: upstream.url, RELAY_SHUTDOWN_DELAY_SECONDS: '0', RELAY_SHUTDOWN_TIMEOUT_SECONDS: '0.5' })
  t.after(() => relay.stop())
  const stream = await openStream(`${relay.url}/stream`)
  await waitFor(() => stream.events.length > 0, 5000, 'the first event')
  const socket = connect(relay.port, '127.0.0.1')
  await once(socket, 'connect')
  socket.write('GET /thinking HTTP/1.1\r\nHost: x\r\nX-Request-Id: thinking\r\n\r\n')
  await waitFor(() => upstream.requests.some((r) => r.url === '/thinking'), 5000, 'the upstream to get the request')
  const answer = readUntilClose(socket, 5000)
  relay.child.kill('SIGTERM')
  const { code } = await exitWithin(relay, 5000)
  assert.equal(code, 0)
  const res = await answer
  assert.equal(res.statusCode, 503)
  assert.equal(res.headers['retry-after'], '1')
  assert.equal(res.headers['x-request-id'], 'thinking')
  assert.deepEqual(JSON.parse(res.body), { statusCode: 503, error: 'Service Unavailable', message: 'The relay is restarting; try again' })
  assert.equal((await stream.done).complete, false)
  const cut = relay.logs.find((line) => line.path === '/stream' && line.statusCode !== undefined)
  assert.equal(cut?.msg, 'response cut at the shutdown timeout')
  assert.equal(cut?.statusCode, 200)
  const refused = relay.logs.find((line) => line.reqId === 'thinking' && line.statusCode !== undefined)
  assert.equal(refused?.statusCode, 503)
  // Neither is the upstream's fault.
  assert.equal(relay.logs.find((line) => line.level === 'error'), undefined)
})
