// One GPU behind a public door: the concurrency cap, the fair queue, per-client limits, the rate limit
// and load shedding, against the built relay on real sockets, with an upstream that counts how many
// requests it has open at once.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { connect } from 'node:net'
import { once } from 'node:events'
import { fileURLToPath } from 'node:url'
import { setTimeout as sleep } from 'node:timers/promises'
import { exitWithin, spawnRelay, type RelayProcess } from '../helpers/relay.js'
import { startCountingUpstream, waitFor, type CountingUpstream } from '../helpers/upstreams.js'
import { rawRequest, readUntilClose } from '../helpers/http.js'
import { metricsText } from '../helpers/metrics.js'
import { requestAs } from '../helpers/clients.js'

type TestContext = { after: (fn: () => Promise<void>) => void }

const LAG_PROBE = fileURLToPath(new URL('../helpers/lag-probe.mjs', import.meta.url))

async function setup (t: TestContext, env: Record<string, string>, nodeOptions: string[] = []): Promise<{ relay: RelayProcess, upstream: CountingUpstream }> {
  const upstream = await startCountingUpstream()
  t.after(() => upstream.close())
  const workers = Number(env.RELAY_WORKERS ?? '1')
  const relay = await spawnRelay({ UPSTREAM_URL: upstream.url, RELAY_TRUST_PROXY: '127.0.0.1', ...env }, { ready: workers, nodeOptions })
  t.after(() => relay.stop())
  return { relay, upstream }
}

function metric (text: string, name: string, labels = ''): number {
  const line = text.split('\n').find((l) => l.startsWith(`${name}${labels} `))
  return line === undefined ? Number.NaN : Number(line.split(' ').at(-1))
}

for (const workers of ['1', '2']) {
  test(`the cap holds for the pod: never more than RELAY_MAX_CONCURRENT at the upstream (${workers} worker(s))`, async (t) => {
    const { relay, upstream } = await setup(t, { RELAY_WORKERS: workers, RELAY_MAX_CONCURRENT: '4', RELAY_QUEUE_LIMIT: '100' })
    const answers = await Promise.all(Array.from({ length: 24 }, async (_, i) => await requestAs(`198.51.100.${i % 6}`, `${relay.url}/delay?ms=150&n=${i}`)))
    assert.ok(answers.every((a) => a.status === 200), answers.map((a) => a.status).join(' '))
    assert.equal(upstream.maxOpen, 4)
    const metrics = await metricsText(relay.url)
    assert.equal(metric(metrics, 'relay_queue_wait_seconds_count'), 24)
    assert.equal(metric(metrics, 'relay_upstream_requests_in_flight'), 0)
    assert.equal(metric(metrics, 'relay_queue_length'), 0)
  })
}

test('a stream holds its slot until it ends; the request behind it waits, then runs', async (t) => {
  const { relay, upstream } = await setup(t, { RELAY_MAX_CONCURRENT: '1' })
  const started = Date.now()
  const stream = requestAs('198.51.100.1', `${relay.url}/sse?events=6&interval=100`)
  await waitFor(() => upstream.open === 1, 5000, 'the stream upstream')
  const inFlight = await metricsText(relay.url)
  assert.equal(metric(inFlight, 'relay_upstream_requests_in_flight'), 1)
  const next = requestAs('198.51.100.2', `${relay.url}/delay?ms=1`)
  await waitFor(async () => metric(await metricsText(relay.url), 'relay_queue_length') === 1, 2000, 'the second request to be queued')
  assert.equal(upstream.requests.length, 1, 'the queued request has not reached the upstream')
  const [streamed, after] = await Promise.all([stream, next])
  assert.equal(streamed.body.split('\n\n').filter(Boolean).length, 6)
  assert.equal(after.status, 200)
  assert.ok(Date.now() - started >= 550, 'the second one ran after the whole stream')
  assert.equal(upstream.maxOpen, 1)
})

test('queue full: 503 with Retry-After at once, never reaching the upstream; counted and logged with the reason', async (t) => {
  const { relay, upstream } = await setup(t, { RELAY_MAX_CONCURRENT: '1', RELAY_QUEUE_LIMIT: '1' })
  const running = requestAs('198.51.100.1', `${relay.url}/delay?ms=800`)
  const queued = requestAs('198.51.100.2', `${relay.url}/delay?ms=1`)
  await waitFor(async () => metric(await metricsText(relay.url), 'relay_queue_length') === 1, 2000, 'one queued')
  const started = Date.now()
  const refused = await requestAs('198.51.100.3', `${relay.url}/delay?ms=1`, { headers: { 'x-request-id': 'queue-full' } })
  assert.ok(Date.now() - started < 300, 'refused at once')
  assert.equal(refused.status, 503)
  assert.match(String(refused.headers['retry-after']), /^[1-9]\d*$/)
  assert.deepEqual(JSON.parse(refused.body), { statusCode: 503, error: 'Service Unavailable', message: 'The GPU is busy and its queue is full; try again later' })
  await Promise.all([running, queued])
  assert.equal(upstream.requests.length, 2)
  const metrics = await metricsText(relay.url)
  assert.equal(metric(metrics, 'relay_rejected_requests_total', '{reason="queue_full"}'), 1)
  assert.equal(metric(metrics, 'relay_http_requests_total', '{method="GET",endpoint="/delay",status="503"}'), 1)
  const line = await relay.logs.waitFor((l) => l.reqId === 'queue-full' && l.statusCode === 503)
  assert.equal(line.code, 'RELAY_QUEUE_FULL')
  assert.equal(relay.logs.lines.filter((l) => l.level === 'info' && /queue/i.test(l.msg)).length, 0, 'no line per queued request at info')
})

test('queue timeout: 503 with Retry-After after RELAY_QUEUE_TIMEOUT_SECONDS, never reaching the upstream', async (t) => {
  const { relay, upstream } = await setup(t, { RELAY_MAX_CONCURRENT: '1', RELAY_QUEUE_TIMEOUT_SECONDS: '0.5' })
  const running = requestAs('198.51.100.1', `${relay.url}/delay?ms=1500`)
  await waitFor(() => upstream.open === 1, 2000, 'the first upstream')
  const started = Date.now()
  const timedOut = await requestAs('198.51.100.2', `${relay.url}/delay?ms=1&second`)
  const elapsed = Date.now() - started
  assert.equal(timedOut.status, 503)
  assert.ok(elapsed >= 450 && elapsed < 1400, `${elapsed} ms`)
  assert.equal(timedOut.headers['retry-after'], '1')
  assert.equal(JSON.parse(timedOut.body).message, 'The GPU stayed busy for too long; try again later')
  await running
  assert.deepEqual(upstream.requests.map((r) => r.url), ['/delay?ms=1500'])
  assert.equal(metric(await metricsText(relay.url), 'relay_rejected_requests_total', '{reason="queue_timeout"}'), 1)
})

test('a queued client that disconnects leaves the queue at once, is logged as 499 and never reaches the upstream', async (t) => {
  const { relay, upstream } = await setup(t, { RELAY_MAX_CONCURRENT: '1' })
  const running = requestAs('198.51.100.1', `${relay.url}/delay?ms=600`)
  await waitFor(() => upstream.open === 1, 2000, 'the first upstream')
  const socket = connect(relay.port, '127.0.0.1')
  await once(socket, 'connect')
  socket.write('GET /delay?ms=1&left HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: 198.51.100.2\r\nX-Request-Id: left-queue\r\n\r\n')
  await waitFor(async () => metric(await metricsText(relay.url), 'relay_queue_length') === 1, 2000, 'it to be queued')
  socket.destroy()
  const line = await relay.logs.waitFor((l) => l.reqId === 'left-queue' && l.statusCode !== undefined, 2000)
  assert.equal(line.statusCode, 499)
  assert.equal(metric(await metricsText(relay.url), 'relay_queue_length'), 0)
  await running
  await sleep(200)
  assert.deepEqual(upstream.requests.map((r) => r.url), ['/delay?ms=600'])
})

for (const workers of ['1', '2']) {
  test(`fair: a second client is served within two slots while the first has many queued (${workers} worker(s))`, async (t) => {
    const { relay, upstream } = await setup(t, { RELAY_WORKERS: workers, RELAY_MAX_CONCURRENT: '2', RELAY_QUEUE_LIMIT: '100' })
    const greedy = Array.from({ length: 30 }, async (_, i) => await requestAs('198.51.100.66', `${relay.url}/delay?ms=100&greedy=${i}`))
    await waitFor(async () => metric(await metricsText(relay.url), 'relay_queue_length') >= 25, 3000, 'the greedy client\'s queue')
    const modest = await requestAs('198.51.100.7', `${relay.url}/delay?ms=100&modest`)
    assert.equal(modest.status, 200)
    const order = upstream.requests.map((r) => r.url)
    const position = order.indexOf('/delay?ms=100&modest')
    const greedyBefore = order.slice(0, position).length
    // The greedy client had 2 running when the modest one arrived; it may start at most 2 more before it.
    assert.ok(greedyBefore <= 4, `the modest request was the ${position + 1}th to reach the upstream`)
    await Promise.all(greedy)
    assert.equal(upstream.maxOpen, 2)
  })
}

test('per client: past RELAY_MAX_CONCURRENT_PER_CLIENT in flight or waiting, 429 at once; others are not held back', async (t) => {
  const { relay, upstream } = await setup(t, { RELAY_MAX_CONCURRENT_PER_CLIENT: '2' })
  const held = [requestAs('198.51.100.5', `${relay.url}/delay?ms=500`), requestAs('198.51.100.5', `${relay.url}/delay?ms=500`)]
  await waitFor(() => upstream.open === 2, 2000, 'two upstream')
  const third = await requestAs('198.51.100.5', `${relay.url}/delay?ms=1`)
  assert.equal(third.status, 429)
  assert.match(String(third.headers['retry-after']), /^[1-9]\d*$/)
  assert.equal(JSON.parse(third.body).message, 'Too many of your requests are in progress; wait for one to finish')
  const other = await requestAs('198.51.100.6', `${relay.url}/delay?ms=1`)
  assert.equal(other.status, 200)
  // An IPv6 client is its /64: another address in it is the same client.
  const v6 = [requestAs('2001:db8:5:5::1', `${relay.url}/delay?ms=500`), requestAs('2001:db8:5:5::2', `${relay.url}/delay?ms=500`)]
  await waitFor(() => upstream.open >= 4, 2000, 'the IPv6 requests upstream')
  assert.equal((await requestAs('2001:db8:5:5:ffff::3', `${relay.url}/delay?ms=1`)).status, 429)
  await Promise.all([...held, ...v6])
  assert.equal((await requestAs('198.51.100.5', `${relay.url}/delay?ms=1`)).status, 200, 'free again once one ended')
  assert.equal(metric(await metricsText(relay.url), 'relay_rejected_requests_total', '{reason="client_concurrency"}'), 2)
})

for (const workers of ['1', '2']) {
  test(`rate limit: 429 with the RateLimit headers past RELAY_RATE_LIMIT per window, for the pod; free again after the window (${workers} worker(s))`, async (t) => {
    const { relay } = await setup(t, { RELAY_WORKERS: workers, RELAY_RATE_LIMIT: '5', RELAY_RATE_LIMIT_WINDOW_SECONDS: '2' })
    const statuses: number[] = []
    let last
    for (let i = 0; i < 8; i++) {
      last = await requestAs('198.51.100.9', `${relay.url}/v1/models`)
      statuses.push(last.status)
      if (i === 0) {
        assert.equal(last.headers['ratelimit-limit'], '5')
        assert.equal(last.headers['ratelimit-remaining'], '4')
        assert.match(String(last.headers['ratelimit-reset']), /^[12]$/)
      }
    }
    // Whichever worker each request reached, the pod counted them all.
    assert.deepEqual(statuses, [200, 200, 200, 200, 200, 429, 429, 429])
    assert.ok(last !== undefined)
    assert.equal(last.headers['ratelimit-remaining'], '0')
    assert.match(String(last.headers['retry-after']), /^[12]$/)
    assert.match(JSON.parse(last.body).message, /^Too many requests; try again in [12] seconds$/)
    assert.equal((await requestAs('198.51.100.10', `${relay.url}/v1/models`)).status, 200, 'another client has its own count')
    await sleep(2100)
    assert.equal((await requestAs('198.51.100.9', `${relay.url}/v1/models`)).status, 200, 'a new window')
    assert.equal(metric(await metricsText(relay.url), 'relay_rejected_requests_total', '{reason="rate_limit"}'), 3)
  })
}

test('probes and /metrics are never queued, limited or rejected', async (t) => {
  const { relay, upstream } = await setup(t, { RELAY_MAX_CONCURRENT: '1', RELAY_QUEUE_LIMIT: '0', RELAY_RATE_LIMIT: '1', RELAY_MAX_CONCURRENT_PER_CLIENT: '1' })
  const running = requestAs('198.51.100.1', `${relay.url}/delay?ms=800`)
  await waitFor(() => upstream.open === 1, 2000, 'the GPU busy')
  for (let i = 0; i < 10; i++) {
    for (const path of ['/healthz', '/livez', '/metrics']) {
      const res = await requestAs('198.51.100.1', relay.url + path)
      assert.equal(res.status, 200, path)
      assert.equal(res.headers['ratelimit-limit'], undefined, path)
    }
  }
  await running
})

test('the event loop lagging past RELAY_MAX_EVENT_LOOP_DELAY_MS: proxied requests get 503 overloaded, probes keep answering', async (t) => {
  const { relay } = await setup(t, { RELAY_MAX_EVENT_LOOP_DELAY_MS: '50' }, ['--import', LAG_PROBE])
  assert.equal((await requestAs('198.51.100.1', `${relay.url}/v1/models`)).status, 200)
  process.kill(relay.child.pid as number, 'SIGURG')
  await waitFor(async () => (await requestAs('198.51.100.1', `${relay.url}/v1/models`)).status === 503, 3000, 'a 503 while it lags')
  const shed = await requestAs('198.51.100.1', `${relay.url}/v1/models`, { headers: { 'x-request-id': 'shed' } })
  if (shed.status === 503) {
    assert.equal(JSON.parse(shed.body).message, 'The relay is overloaded; try again shortly')
    assert.equal(shed.headers['retry-after'], '1')
  }
  assert.equal((await requestAs('198.51.100.1', `${relay.url}/healthz`)).status, 200, 'readiness is not shed')
  await waitFor(async () => (await requestAs('198.51.100.1', `${relay.url}/v1/models`)).status === 200, 8000, 'service again once the lag is over')
  assert.ok(metric(await metricsText(relay.url), 'relay_rejected_requests_total', '{reason="overloaded"}') >= 1)
})

/** An 11 MB upload from a client that keeps writing whatever it is answered; resolves with the status it got (0: reset). */
async function stubbornUpload (relay: RelayProcess, ip: string): Promise<number> {
  const socket = connect(relay.port, '127.0.0.1')
  await once(socket, 'connect')
  socket.on('error', () => {})
  socket.write(`POST /upload HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: ${ip}\r\nContent-Type: application/octet-stream\r\nContent-Length: ${11 * 1024 * 1024}\r\n\r\n`)
  // As fast as the socket takes it, until the relay closes.
  const chunk = Buffer.alloc(256 * 1024, 'x')
  let sent = 0
  const write = (): void => {
    while (socket.writable && sent < 11 * 1024 * 1024) {
      sent += chunk.length
      if (!socket.write(chunk)) return
    }
  }
  socket.on('drain', write)
  write()
  const res = await readUntilClose(socket, 15_000)
  return res.statusCode
}

test('a refusal (413, 429, 503) is delivered to a client still sending its body, not reset under it', async (t) => {
  // The body limit, then the rate limit (2 a window: the first two count, refused or not).
  const limited = await setup(t, { RELAY_BODY_LIMIT_BYTES: '1048576', RELAY_RATE_LIMIT: '2' })
  const statuses: number[] = []
  for (let i = 0; i < 8; i++) statuses.push(await stubbornUpload(limited.relay, '198.51.100.4'))
  assert.deepEqual(statuses, [413, 413, 429, 429, 429, 429, 429, 429])
  // A busy GPU with no queue.
  const busy = await setup(t, { RELAY_MAX_CONCURRENT: '1', RELAY_QUEUE_LIMIT: '0', RELAY_BODY_LIMIT_BYTES: '104857600' })
  const running = requestAs('198.51.100.1', `${busy.relay.url}/delay?ms=3000`)
  await waitFor(() => busy.upstream.open === 1, 2000, 'the GPU busy')
  const refused: number[] = []
  for (let i = 0; i < 6; i++) refused.push(await stubbornUpload(busy.relay, `198.51.100.${20 + i}`))
  assert.deepEqual(refused, Array(6).fill(503))
  await running
})

test('with queued uploads the relay\'s memory stays bounded: their bodies stay in the sockets', async (t) => {
  const { relay, upstream } = await setup(t, { RELAY_MAX_CONCURRENT: '1', RELAY_QUEUE_LIMIT: '100', RELAY_QUEUE_TIMEOUT_SECONDS: '30', RELAY_BODY_LIMIT_BYTES: '104857600' })
  const running = requestAs('198.51.100.1', `${relay.url}/delay?ms=4000`)
  await waitFor(() => upstream.open === 1, 2000, 'the GPU busy')
  const rssBefore = metric(await metricsText(relay.url), 'process_resident_memory_bytes')
  const size = 10 * 1024 * 1024
  const chunk = Buffer.alloc(256 * 1024, 'u')
  const sockets = await Promise.all(Array.from({ length: 30 }, async (_, i) => {
    const socket = connect(relay.port, '127.0.0.1')
    await once(socket, 'connect')
    socket.on('error', () => {})
    socket.write(`POST /upload HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: 198.51.100.${10 + i}\r\nContent-Length: ${size}\r\n\r\n`)
    // As much as the socket takes without waiting: the rest would wait in the client.
    for (let sent = 0; sent < size && socket.write(chunk); sent += chunk.length);
    return socket
  }))
  await waitFor(async () => metric(await metricsText(relay.url), 'relay_queue_length') === 30, 5000, '30 queued uploads')
  await sleep(500)
  const rssQueued = metric(await metricsText(relay.url), 'process_resident_memory_bytes')
  const grown = (rssQueued - rssBefore) / 1024 / 1024
  // 30 × 10 MB would be 300 MB; each queued upload may hold its socket's and parser's buffers.
  assert.ok(grown < 60, `RSS grew by ${grown.toFixed(1)} MB with 30 queued 10 MB uploads`)
  assert.equal(upstream.requests.length, 1)
  for (const socket of sockets) socket.destroy()
  await running
})

test('drain: queued requests keep their place and are served like in-flight ones', async (t) => {
  const { relay, upstream } = await setup(t, { RELAY_MAX_CONCURRENT: '1', RELAY_SHUTDOWN_DELAY_SECONDS: '0', RELAY_SHUTDOWN_TIMEOUT_SECONDS: '10' })
  const first = requestAs('198.51.100.1', `${relay.url}/delay?ms=400`)
  await waitFor(() => upstream.open === 1, 2000, 'the first upstream')
  const second = requestAs('198.51.100.2', `${relay.url}/delay?ms=400&second`)
  await waitFor(async () => metric(await metricsText(relay.url), 'relay_queue_length') === 1, 2000, 'one queued')
  relay.child.kill('SIGTERM')
  const [a, b] = await Promise.all([first, second])
  assert.equal(a.status, 200)
  assert.equal(b.status, 200, 'the queued request was served during the drain')
  assert.equal((await exitWithin(relay, 5000)).code, 0)
})

test('drain: a request still waiting for a slot when the shutdown timeout ends gets 503, never a hang, never the upstream', async (t) => {
  const { relay, upstream } = await setup(t, { RELAY_MAX_CONCURRENT: '1', RELAY_SHUTDOWN_DELAY_SECONDS: '0', RELAY_SHUTDOWN_TIMEOUT_SECONDS: '1', RELAY_QUEUE_TIMEOUT_SECONDS: '30' })
  const stream = requestAs('198.51.100.1', `${relay.url}/sse?interval=100`).catch(() => undefined)
  await waitFor(() => upstream.open === 1, 2000, 'the stream upstream')
  const waiting = requestAs('198.51.100.2', `${relay.url}/delay?ms=1&waiting`, { headers: { 'x-request-id': 'still-waiting' } })
  await waitFor(async () => metric(await metricsText(relay.url), 'relay_queue_length') === 1, 2000, 'one queued')
  relay.child.kill('SIGTERM')
  const refused = await waiting
  assert.equal(refused.status, 503)
  assert.equal(refused.headers['retry-after'], '1')
  assert.equal(JSON.parse(refused.body).message, 'The relay is restarting; try again')
  await stream
  assert.equal((await exitWithin(relay, 5000)).code, 0)
  assert.deepEqual(upstream.requests.map((r) => r.url), ['/sse?interval=100'])
  assert.equal(relay.logs.find((l) => l.reqId === 'still-waiting' && l.statusCode !== undefined)?.statusCode, 503)
})

test('invalid limits stop the relay at start, naming the variable', async () => {
  for (const [name, value] of [['RELAY_MAX_CONCURRENT', '-1'], ['RELAY_QUEUE_LIMIT', 'lots'], ['RELAY_QUEUE_TIMEOUT_SECONDS', '0'], ['RELAY_RATE_LIMIT', '1.5'],
    ['RELAY_RATE_LIMIT_WINDOW_SECONDS', '0'], ['RELAY_MAX_EVENT_LOOP_DELAY_MS', '100000'], ['RELAY_MAX_CONCURRENT_PER_CLIENT', ''], ['RELAY_REDIS_URL', 'http://redis:6379']]) {
    const relay = await spawnRelay({ UPSTREAM_URL: 'http://127.0.0.1:9', [name as string]: value as string }, { ready: 0 })
    const { code } = await exitWithin(relay, 5000)
    assert.equal(code, 1, name)
    const line = relay.logs.lines.find((l) => l.level === 'fatal')
    assert.equal(line?.variable, name)
    await relay.stop()
  }
  // The Redis URL carries a password: it is named, never shown.
  const relay = await spawnRelay({ UPSTREAM_URL: 'http://127.0.0.1:9', RELAY_REDIS_URL: 'ftp://:hunter2@redis' }, { ready: 0 })
  await exitWithin(relay, 5000)
  assert.doesNotMatch(relay.logs.raw.join('\n'), /hunter2/)
  await relay.stop()
})

test('the benchmark\'s limits, on but never binding, are accepted', async (t) => {
  const { relay } = await setup(t, { RELAY_MAX_CONCURRENT: '10000', RELAY_RATE_LIMIT: '1000000', RELAY_MAX_CONCURRENT_PER_CLIENT: '10000', RELAY_MAX_EVENT_LOOP_DELAY_MS: '1000' })
  const res = await rawRequest(relay.port, 'GET /v1/models HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')
  assert.equal(res.statusCode, 200)
  assert.equal(res.headers['ratelimit-limit'], '1000000')
})
