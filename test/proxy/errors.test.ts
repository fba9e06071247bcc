// What the relay does not do with upstream trouble: retry it, or trust a certificate it should not.
// Every fault shape (refused, unresolvable, hanging, stalling, resetting, malformed) is driven
// through the built relay in test/resilience/upstream-faults.test.ts.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createServer as createHttpsServer } from 'node:https'
import { once } from 'node:events'
import type { AddressInfo } from 'node:net'
import { spawnRelay, startRelay } from '../helpers/relay.js'
import { startUpstream } from '../helpers/upstreams.js'
import { makeCertificates } from '../helpers/tls.js'
import { upstreamErrorCounts } from '../helpers/metrics.js'

test('a 503 from the upstream is passed on, never retried', async (t) => {
  const upstream = await startUpstream((req, res) => {
    req.resume()
    res.writeHead(503, { 'content-type': 'application/json', 'retry-after': '0' })
    res.end('{"error":"busy"}')
  })
  t.after(() => upstream.close())
  const relay = await startRelay({ UPSTREAM_URL: upstream.url })
  t.after(() => relay.close())
  const res = await fetch(`${relay.url}/v1/models`)
  assert.equal(res.status, 503)
  assert.deepEqual(await res.json(), { error: 'busy' })
  await new Promise((resolve) => setTimeout(resolve, 200))
  assert.equal(upstream.requests.length, 1)
})

test('an https upstream with an untrusted certificate is refused with 502 unless its CA is trusted', async (t) => {
  const certs = makeCertificates()
  t.after(() => certs.remove())
  const server = createHttpsServer({ key: certs.key, cert: certs.cert }, (req, res) => {
    req.resume()
    res.writeHead(200, { 'content-type': 'application/json' })
    res.end('{"secure":true}')
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  t.after(() => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => resolve()) }))
  const url = `https://127.0.0.1:${(server.address() as AddressInfo).port}`

  const untrusted = await startRelay({ UPSTREAM_URL: url })
  t.after(() => untrusted.close())
  const refused = await fetch(`${untrusted.url}/x`)
  assert.equal(refused.status, 502)
  assert.match(((await refused.json()) as { message: string }).message, /secure connection/)
  assert.equal((await upstreamErrorCounts(untrusted.url)).connect, 1)

  // NODE_EXTRA_CA_CERTS is read at process start: the documented way to trust a private CA.
  const trusted = await spawnRelay({ UPSTREAM_URL: url, NODE_EXTRA_CA_CERTS: certs.caFile })
  t.after(() => trusted.stop())
  const ok = await fetch(`${trusted.url}/x`)
  assert.equal(ok.status, 200)
  assert.deepEqual(await ok.json(), { secure: true })
})
