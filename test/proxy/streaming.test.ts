// Bodies stream both ways: events reach the client as the upstream writes them, and large bodies
// pass without the relay's memory growing with them.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { request } from 'node:http'
import { once } from 'node:events'
import { setTimeout as sleep } from 'node:timers/promises'
import { spawnRelay, startRelay } from '../helpers/relay.js'
import { startUpstream } from '../helpers/upstreams.js'
import { readProcMemory } from '../../harness/proc.js'

test('each SSE event reaches the client within milliseconds of the upstream writing it', async (t) => {
  const written: number[] = []
  const upstream = await startUpstream((req, res) => {
    req.resume()
    res.writeHead(200, { 'content-type': 'text/event-stream' })
    res.flushHeaders()
    let n = 0
    const timer = setInterval(() => {
      written.push(performance.now())
      res.write(`data: ${n}\n\n`)
      if (++n === 5) { clearInterval(timer); res.end() }
    }, 150)
  })
  t.after(() => upstream.close())
  const relay = await startRelay({ UPSTREAM_URL: upstream.url })
  t.after(() => relay.close())

  const res = await fetch(`${relay.url}/v1/chat/completions`, { method: 'POST', body: '{"stream":true}', headers: { 'content-type': 'application/json' } })
  assert.equal(res.headers.get('content-type'), 'text/event-stream')
  const arrived: number[] = []
  let text = ''
  const decoder = new TextDecoder()
  for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
    text += decoder.decode(chunk)
    while (arrived.length < text.split('\n\n').length - 1) arrived.push(performance.now())
  }
  assert.equal(text, 'data: 0\n\ndata: 1\n\ndata: 2\n\ndata: 3\n\ndata: 4\n\n')
  assert.equal(arrived.length, 5)
  for (let i = 0; i < 5; i++) {
    const delay = (arrived[i] as number) - (written[i] as number)
    assert.ok(delay < 100, `event ${i} arrived ${delay.toFixed(1)} ms after it was written`)
  }
  // Not buffered: the first event was in the client's hands before the upstream wrote the last one.
  assert.ok((arrived[0] as number) < (written[4] as number))
})

test('a stream\'s headers reach the client when the upstream sends them, before its first event', async (t) => {
  // A GPU can take seconds to its first token; clients time the wait for headers separately.
  const upstream = await startUpstream((req, res) => {
    req.resume()
    res.writeHead(200, { 'content-type': 'text/event-stream' })
    res.flushHeaders()
    setTimeout(() => res.end('data: first\n\n'), 600)
  })
  t.after(() => upstream.close())
  const relay = await startRelay({ UPSTREAM_URL: upstream.url })
  t.after(() => relay.close())

  const started = performance.now()
  const res = await fetch(`${relay.url}/v1/chat/completions`, { method: 'POST', body: '{"stream":true}', headers: { 'content-type': 'application/json' } })
  const headersAfter = performance.now() - started
  assert.equal(res.status, 200)
  assert.equal(res.headers.get('content-type'), 'text/event-stream')
  assert.equal(await res.text(), 'data: first\n\n')
  const bodyAfter = performance.now() - started
  assert.ok(headersAfter < 300, `headers arrived after ${headersAfter.toFixed(0)} ms, with the first event (${bodyAfter.toFixed(0)} ms)`)
  assert.ok(bodyAfter >= 550, `the body arrived after ${bodyAfter.toFixed(0)} ms`)
})

test('a 100 MB upload and a 100 MB download pass without the relay buffering them', async (t) => {
  const MB = 1024 * 1024
  const size = 100 * MB
  const upstream = await startUpstream((req, res) => {
    if (req.method === 'POST') {
      let received = 0
      req.on('data', (chunk: Buffer) => { received += chunk.length })
      req.on('end', () => { res.end(String(received)) })
      return
    }
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': size })
    const chunk = Buffer.alloc(64 * 1024, 7)
    let sent = 0
    const pump = (): void => {
      while (sent < size) {
        sent += chunk.length
        if (!res.write(chunk)) { res.once('drain', pump); return }
      }
      res.end()
    }
    pump()
  })
  t.after(() => upstream.close())
  const relay = await spawnRelay({ UPSTREAM_URL: upstream.url, RELAY_BODY_LIMIT_BYTES: String(200 * MB) })
  t.after(() => relay.stop())
  const pid = relay.child.pid as number
  // Warm up the pool and the JIT, then take the baseline.
  for (let i = 0; i < 3; i++) await (await fetch(`${relay.url}/warm`)).arrayBuffer()
  await sleep(200)
  const baseline = readProcMemory(pid)?.rss ?? NaN

  const upload = request(`${relay.url}/upload`, { method: 'POST', headers: { 'content-type': 'application/octet-stream', 'content-length': size } })
  const chunk = Buffer.alloc(64 * 1024, 1)
  for (let sent = 0; sent < size; sent += chunk.length) {
    if (!upload.write(chunk)) await once(upload, 'drain')
  }
  upload.end()
  const [uploadRes] = await once(upload, 'response') as [import('node:http').IncomingMessage]
  let echoed = ''
  for await (const part of uploadRes) echoed += String(part)
  assert.equal(uploadRes.statusCode, 200)
  assert.equal(Number(echoed), size)

  const download = await fetch(`${relay.url}/download`)
  let downloaded = 0
  for await (const part of download.body as unknown as AsyncIterable<Uint8Array>) downloaded += part.length
  assert.equal(downloaded, size)

  const growth = (readProcMemory(pid)?.hwm ?? NaN) - baseline
  assert.ok(growth < 60 * MB, `peak RSS grew by ${(growth / MB).toFixed(1)} MB while 200 MB passed through`)
})
