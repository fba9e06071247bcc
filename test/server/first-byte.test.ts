// relay_upstream_time_to_first_byte_seconds: what users of an LLM feel, from the request's arrival to
// the upstream's first body byte (the first token), summed over workers like every other metric.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawnRelay } from '../helpers/relay.js'
import { startUpstream } from '../helpers/upstreams.js'
import { metricsText } from '../helpers/metrics.js'

function bucket (text: string, endpoint: string, le: string): number {
  const line = text.split('\n').find((l) => l.startsWith(`relay_upstream_time_to_first_byte_seconds_bucket{le="${le}",method="GET",endpoint="${endpoint}"}`))
  return line === undefined ? Number.NaN : Number(line.split(' ').at(-1))
}

for (const workers of ['1', '2']) {
  test(`time to first byte: the first token's wait, not the headers' and not the whole stream (${workers} worker(s))`, async (t) => {
    const upstream = await startUpstream((req, res) => {
      req.resume()
      // Headers at once, the first token after 300 ms, the rest over another second.
      res.writeHead(200, { 'content-type': 'text/event-stream' })
      res.flushHeaders()
      let n = 0
      const timer = setTimeout(function next () {
        res.write(`data: ${n}\n\n`)
        if (++n === 5) res.end()
        else timer.refresh()
      }, 300)
      res.on('close', () => clearTimeout(timer))
    })
    t.after(() => upstream.close())
    const relay = await spawnRelay({ UPSTREAM_URL: upstream.url, RELAY_WORKERS: workers }, { ready: Number(workers) })
    t.after(() => relay.stop())
    await Promise.all(Array.from({ length: 4 }, async () => await (await fetch(`${relay.url}/v1/stream`)).text()))
    const text = await metricsText(relay.url)
    assert.equal(bucket(text, '/v1/stream', '0.25'), 0, 'nobody got a first token within 250 ms')
    assert.equal(bucket(text, '/v1/stream', '1'), 4, 'all four within a second, long before their streams ended')
    assert.match(text, /^relay_upstream_time_to_first_byte_seconds_count\{method="GET",endpoint="\/v1\/stream"\} 4$/m)
  })
}

test('a response without a body counts at its end, and an upstream 404 as unmatched', async (t) => {
  const upstream = await startUpstream((req, res) => {
    req.resume()
    res.writeHead(req.url === '/missing' ? 404 : 204).end()
  })
  t.after(() => upstream.close())
  const relay = await spawnRelay({ UPSTREAM_URL: upstream.url })
  t.after(() => relay.stop())
  await fetch(`${relay.url}/v1/empty`)
  await fetch(`${relay.url}/missing`)
  const text = await metricsText(relay.url)
  assert.match(text, /^relay_upstream_time_to_first_byte_seconds_count\{method="GET",endpoint="\/v1\/empty"\} 1$/m)
  assert.match(text, /^relay_upstream_time_to_first_byte_seconds_count\{method="GET",endpoint="unmatched"\} 1$/m)
  assert.doesNotMatch(text, /endpoint="\/missing"/)
})
