// RELAY_BODY_LIMIT_BYTES holds on the stream: a declared length over it is refused before the
// upstream is contacted, and a chunked body is cut where it crosses it.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { connect } from 'node:net'
import { once } from 'node:events'
import { spawnRelay } from '../helpers/relay.js'
import { startUpstream, waitFor } from '../helpers/upstreams.js'
import { rawRequest, readUntilClose } from '../helpers/http.js'

const LIMIT = 1024

test('a Content-Length over the limit: 413 before the upstream is contacted', async (t) => {
  const upstream = await startUpstream()
  t.after(() => upstream.close())
  const relay = await spawnRelay({ UPSTREAM_URL: upstream.url, RELAY_BODY_LIMIT_BYTES: String(LIMIT) })
  t.after(() => relay.stop())
  const res = await rawRequest(relay.port, `POST /echo HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nContent-Length: ${LIMIT + 1}\r\n\r\n`)
  assert.equal(res.statusCode, 413)
  assert.equal(res.headers.connection, 'close')
  assert.deepEqual(JSON.parse(res.body), { statusCode: 413, error: 'Payload Too Large', message: `The request body exceeds the limit of ${LIMIT} bytes` })
  assert.equal(upstream.connections, 0)
})

test('a body exactly at the limit passes', async (t) => {
  const upstream = await startUpstream()
  t.after(() => upstream.close())
  const relay = await spawnRelay({ UPSTREAM_URL: upstream.url, RELAY_BODY_LIMIT_BYTES: String(LIMIT) })
  t.after(() => relay.stop())
  const body = 'x'.repeat(LIMIT)
  const declared = await fetch(`${relay.url}/echo`, { method: 'POST', body, headers: { 'content-type': 'text/plain' } })
  assert.equal(await declared.text(), body)
  const chunked = await rawRequest(relay.port, `POST /echo HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n200\r\n${body.slice(0, 512)}\r\n200\r\n${body.slice(512)}\r\n0\r\n\r\n`)
  assert.equal(chunked.statusCode, 200)
  assert.equal(chunked.body, body)
})

test('a chunked body crossing the limit is cut: the upstream request never completes, the client gets 413', async (t) => {
  let completed = 0
  let aborted = 0
  const upstream = await startUpstream((req, res) => {
    req.on('end', () => { completed++; res.end('complete') })
    req.on('aborted', () => { aborted++ })
    req.on('error', () => {})
    req.resume()
  })
  t.after(() => upstream.close())
  const relay = await spawnRelay({ UPSTREAM_URL: upstream.url, RELAY_BODY_LIMIT_BYTES: String(LIMIT) })
  t.after(() => relay.stop())

  const socket = connect(relay.port, '127.0.0.1')
  await once(socket, 'connect')
  socket.write('POST /upload HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream\r\nTransfer-Encoding: chunked\r\n\r\n')
  const chunk = 'y'.repeat(600)
  socket.write(`258\r\n${chunk}\r\n`)
  await waitFor(() => upstream.requests.length === 1, 5000, 'the upstream to start receiving')
  socket.write(`258\r\n${chunk}\r\n`)
  const res = await readUntilClose(socket, 5000)
  assert.equal(res.statusCode, 413)
  await waitFor(() => aborted === 1, 2000, 'the upstream request to be aborted')
  assert.equal(completed, 0)
})

test('a chunked body crossing the limit after the response began: the connection is closed', async (t) => {
  const upstream = await startUpstream((req, res) => {
    // Answers at once and keeps streaming while it reads.
    res.writeHead(200, { 'content-type': 'text/event-stream' })
    res.write('data: started\n\n')
    req.on('error', () => {})
    req.on('aborted', () => res.destroy())
    req.resume()
  })
  t.after(() => upstream.close())
  const relay = await spawnRelay({ UPSTREAM_URL: upstream.url, RELAY_BODY_LIMIT_BYTES: String(LIMIT) })
  t.after(() => relay.stop())

  const socket = connect(relay.port, '127.0.0.1')
  await once(socket, 'connect')
  socket.write('POST /upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n10\r\n0123456789abcdef\r\n')
  let seen = ''
  socket.on('data', (data: Buffer) => { seen += data.toString() })
  await waitFor(() => seen.includes('data: started'), 5000, 'the response to begin')
  socket.write(`800\r\n${'z'.repeat(2048)}\r\n`)
  const res = await readUntilClose(socket, 5000)
  assert.equal(res.complete, false)
  assert.doesNotMatch(seen + res.text, /\r\n0\r\n\r\n$/)
})
