// A user who stops a generation must free the GPU: the built relay cancels the upstream request the
// moment the client goes away, before or after the upstream's response headers.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { connect } from 'node:net'
import { once } from 'node:events'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { spawnRelay } from '../helpers/relay.js'
import { startUpstream, waitFor } from '../helpers/upstreams.js'
import { metricsText } from '../helpers/metrics.js'

function cancellableUpstream (respond: (req: IncomingMessage, res: ServerResponse) => void): { closedAt: number[], handler: (req: IncomingMessage, res: ServerResponse) => void } {
  const closedAt: number[] = []
  return {
    closedAt,
    handler: (req, res) => {
      res.on('close', () => { if (!res.writableFinished) closedAt.push(Date.now()) })
      respond(req, res)
    }
  }
}

test('a client that leaves before the response headers cancels the upstream request at once (GET)', async (t) => {
  const fixture = cancellableUpstream((req) => { req.resume() /* thinks forever, never answers */ })
  const upstream = await startUpstream(fixture.handler)
  t.after(() => upstream.close())
  const relay = await spawnRelay({ UPSTREAM_URL: upstream.url })
  t.after(() => relay.stop())

  const socket = connect(relay.port, '127.0.0.1')
  await once(socket, 'connect')
  socket.write('GET /v1/slow HTTP/1.1\r\nHost: x\r\n\r\n')
  await waitFor(() => upstream.requests.length === 1, 5000, 'the upstream to receive the request')
  const leftAt = Date.now()
  socket.destroy()
  await waitFor(() => fixture.closedAt.length === 1, 2000, 'the upstream to see the cancellation')
  assert.ok((fixture.closedAt[0] as number) - leftAt < 1000)
  await waitFor(async () => /relay_http_requests_total\{method="GET",endpoint="\/v1\/slow",status="499"\} 1/.test(await metricsText(relay.url)), 2000, 'the 499 to be counted')
  assert.ok(relay.logs.find((line) => line.msg === 'request aborted by the client' && line.statusCode === 499))
  // Not an upstream failure.
  assert.match(await metricsText(relay.url), /relay_upstream_errors_total\{reason="reset"\} 0/)
})

test('a client that leaves after sending a whole POST body cancels the upstream request too', async (t) => {
  const fixture = cancellableUpstream((req) => { req.resume() })
  const upstream = await startUpstream(fixture.handler)
  t.after(() => upstream.close())
  const relay = await spawnRelay({ UPSTREAM_URL: upstream.url })
  t.after(() => relay.stop())

  const socket = connect(relay.port, '127.0.0.1')
  await once(socket, 'connect')
  const body = '{"messages":[{"role":"user","content":"write a long story"}]}'
  socket.write(`POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body}`)
  await waitFor(() => upstream.requests.length === 1, 5000, 'the upstream to receive the request')
  await new Promise((resolve) => setTimeout(resolve, 100))
  socket.destroy()
  await waitFor(() => fixture.closedAt.length === 1, 2000, 'the upstream to see the cancellation')
  await waitFor(async () => /relay_http_requests_total\{method="POST",endpoint="\/v1\/chat\/completions",status="499"\} 1/.test(await metricsText(relay.url)), 2000, 'the 499 to be counted')
})

test('a client that leaves mid-stream cancels the upstream stream', async (t) => {
  const fixture = cancellableUpstream((req, res) => {
    req.resume()
    res.writeHead(200, { 'content-type': 'text/event-stream' })
    const timer = setInterval(() => res.write('data: token\n\n'), 20)
    res.on('close', () => clearInterval(timer))
  })
  const upstream = await startUpstream(fixture.handler)
  t.after(() => upstream.close())
  const relay = await spawnRelay({ UPSTREAM_URL: upstream.url })
  t.after(() => relay.stop())

  const controller = new AbortController()
  const res = await fetch(`${relay.url}/stream`, { signal: controller.signal })
  const reader = (res.body as ReadableStream<Uint8Array>).getReader()
  const first = await reader.read()
  assert.match(new TextDecoder().decode(first.value), /data: token/)
  controller.abort()
  await waitFor(() => fixture.closedAt.length === 1, 2000, 'the upstream to see the stream cancelled')
  await waitFor(async () => /relay_http_requests_total\{method="GET",endpoint="\/stream",status="499"\} 1/.test(await metricsText(relay.url)), 2000, 'the 499 to be counted')
})
