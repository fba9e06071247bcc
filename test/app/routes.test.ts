// The relay's own routes. Pure routing, so app.inject is enough here; streaming and shutdown are
// tested over real sockets elsewhere.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { buildApp } from '../../src/app.js'
import { loadConfig } from '../../src/config.js'
import { LogCollector, startRelay } from '../helpers/relay.js'
import { ShuttingDown, withHeaders } from '../../src/errors.js'

async function build (env: Record<string, string> = {}): Promise<{ app: Awaited<ReturnType<typeof buildApp>>, logs: LogCollector }> {
  const logs = new LogCollector()
  const app = await buildApp(loadConfig({ UPSTREAM_URL: 'http://127.0.0.1:9', ...env }), { logDestination: { write: (s: string) => logs.write(s) } })
  await app.ready()
  return { app, logs }
}

test('/livez answers while the event loop does', async (t) => {
  const { app } = await build()
  t.after(() => app.close())
  const res = await app.inject({ method: 'GET', url: '/livez' })
  assert.equal(res.statusCode, 200)
  assert.deepEqual(res.json(), { status: 'alive' })
  assert.equal(res.headers['cache-control'], 'no-store')
})

test('/healthz is ok when the upstream host needs no lookup, terminating once shutdown begins', async (t) => {
  const { app, logs } = await build()
  t.after(() => app.close())
  const ok = await app.inject({ method: 'GET', url: '/healthz' })
  assert.equal(ok.statusCode, 200)
  assert.equal(ok.json().status, 'ok')
  assert.equal(ok.headers['cache-control'], 'no-store')

  app.health.beginShutdown()
  app.health.beginShutdown()
  const terminating = await app.inject({ method: 'GET', url: '/healthz' })
  assert.equal(terminating.statusCode, 503)
  assert.deepEqual(terminating.json(), { status: 'terminating' })
  assert.equal(terminating.headers.connection, 'close')
  // /livez stays up: the process is healthy, just leaving.
  assert.equal((await app.inject({ method: 'GET', url: '/livez' })).statusCode, 200)
  const changes = logs.lines.filter((line) => line.event === 'health_changed')
  assert.deepEqual(changes.map((line) => line.to), ['ok', 'terminating'])
})

test('/healthz is degraded while the upstream name does not resolve, and never names it', async (t) => {
  const { app, logs } = await build({ UPSTREAM_URL: 'http://gpu-box.invalid:5010' })
  t.after(() => app.close())
  const res = await app.inject({ method: 'GET', url: '/healthz' })
  assert.equal(res.statusCode, 503)
  assert.deepEqual(res.json(), { status: 'degraded', checks: { upstream_dns: 'failing' } })
  assert.doesNotMatch(res.body, /gpu-box|invalid|5010/)
  await app.inject({ method: 'GET', url: '/healthz' })
  const changes = logs.lines.filter((line) => line.event === 'health_changed')
  assert.equal(changes.length, 1, 'a state change is logged once')
  assert.equal(changes[0]?.level, 'warn')
  assert.equal(changes[0]?.upstreamHost, 'gpu-box.invalid')
})

test('/metrics: Prometheus text, open without a token', async (t) => {
  const { app } = await build()
  t.after(() => app.close())
  const res = await app.inject({ method: 'GET', url: '/metrics' })
  assert.equal(res.statusCode, 200)
  assert.match(String(res.headers['content-type']), /^text\/plain; version=0\.0\.4/)
  assert.equal(res.headers['cache-control'], 'no-store')
  assert.match(res.body, /^relay_build_info\{version="[^"]+",revision="unknown"\} 1$/m)
  assert.match(res.body, /^relay_upstream_errors_total\{reason="dns"\} 0$/m)
  assert.match(res.body, /^process_resident_memory_bytes \d+/m)
  assert.doesNotMatch(res.body, /endpoint="\/metrics"/)
})

test('/metrics with a token: 401 without it or with a wrong one, 200 with it', async (t) => {
  const { app, logs } = await build({ RELAY_METRICS_TOKEN: 'let-me-in' })
  t.after(() => app.close())
  for (const authorization of [undefined, 'Bearer wrong', 'let-me-in', 'Basic bGV0LW1lLWlu', 'Bearer let-me-in-plus']) {
    const res = await app.inject({ method: 'GET', url: '/metrics', headers: authorization === undefined ? {} : { authorization } })
    assert.equal(res.statusCode, 401, String(authorization))
    assert.equal(res.headers['www-authenticate'], 'Bearer realm="metrics"')
    assert.deepEqual(Object.keys(res.json()).sort(), ['error', 'message', 'statusCode'])
  }
  const ok = await app.inject({ method: 'GET', url: '/metrics', headers: { authorization: 'Bearer let-me-in' } })
  assert.equal(ok.statusCode, 200)
  assert.doesNotMatch(logs.raw.join('\n'), /let-me-in/)
})

test('the request id: a sane one is echoed, anything else replaced by a UUID', async (t) => {
  const { app } = await build()
  t.after(() => app.close())
  const kept = await app.inject({ method: 'GET', url: '/livez', headers: { 'x-request-id': 'trace-42.a:b_c' } })
  assert.equal(kept.headers['x-request-id'], 'trace-42.a:b_c')
  const replaced = await app.inject({ method: 'GET', url: '/livez', headers: { 'x-request-id': 'bad id<>' } })
  assert.match(String(replaced.headers['x-request-id']), /^[0-9a-f-]{36}$/)
})

test('methods the relay does not forward get 405 with Allow', async (t) => {
  const { app } = await build()
  t.after(() => app.close())
  const res = await app.inject({ method: 'TRACE', url: '/v1/models' })
  assert.equal(res.statusCode, 405)
  assert.equal(res.headers.allow, 'DELETE, GET, HEAD, OPTIONS, PATCH, POST, PUT')
  assert.deepEqual(res.json(), { statusCode: 405, error: 'Method Not Allowed', message: 'TRACE is not supported' })
})

test('probe routes are counted in the metrics but not logged per request at info', async (t) => {
  // A real socket: the metrics count when the response closes, which app.inject does not simulate.
  const relay = await startRelay({ UPSTREAM_URL: 'http://127.0.0.1:9' })
  t.after(() => relay.close())
  for (const path of ['/livez', '/healthz', '/metrics']) assert.equal((await fetch(relay.url + path)).status, 200)
  const metrics = await (await fetch(relay.url + '/metrics')).text()
  assert.match(metrics, /^relay_http_requests_total\{method="GET",endpoint="\/livez",status="200"\} 1$/m)
  assert.match(metrics, /^relay_http_requests_total\{method="GET",endpoint="\/healthz",status="200"\} 1$/m)
  assert.doesNotMatch(metrics, /endpoint="\/metrics"/)
  assert.equal(relay.logs.lines.filter((line) => line.reqId !== undefined).length, 0)
})

test('at debug, probe routes are logged too', async (t) => {
  const relay = await startRelay({ UPSTREAM_URL: 'http://127.0.0.1:9', RELAY_LOG_LEVEL: 'DEBUG' })
  t.after(() => relay.close())
  await fetch(relay.url + '/livez')
  const line = await relay.logs.waitFor((l) => l.path === '/livez')
  assert.equal(line.level, 'debug')
  assert.equal(line.statusCode, 200)
})

test('the one error handler: the relay\'s own errors keep their words, anything else unexpected gets only its status text', async (t) => {
  const logs = new LogCollector()
  const app = await buildApp(loadConfig({ UPSTREAM_URL: 'http://127.0.0.1:9' }), { logDestination: { write: (s: string) => logs.write(s) } })
  app.get('/__own', async () => { throw withHeaders(new ShuttingDown(), { 'retry-after': 3 }) })
  app.get('/__unexpected', async () => { throw new Error('connect ECONNREFUSED 10.0.0.7:5010') })
  await app.ready()
  t.after(() => app.close())
  const own = await app.inject({ method: 'GET', url: '/__own' })
  assert.equal(own.statusCode, 503)
  assert.equal(own.headers['retry-after'], '3')
  assert.deepEqual(own.json(), { statusCode: 503, error: 'Service Unavailable', message: 'The relay is restarting; try again' })
  const unexpected = await app.inject({ method: 'GET', url: '/__unexpected' })
  assert.equal(unexpected.statusCode, 500)
  assert.deepEqual(unexpected.json(), { statusCode: 500, error: 'Internal Server Error', message: 'Internal Server Error' })
  assert.ok(logs.find((line) => line.msg === 'request failed' && line.level === 'error'), 'an unexpected error is logged')
  assert.equal(logs.lines.filter((line) => line.msg === 'request failed').length, 1, 'the relay\'s own are not')
})
