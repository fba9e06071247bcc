// Response bodies pass to the client as the upstream's bytes (src/forward/upstream-pool.ts): these
// guard what that must never change. The framing is checked as it passes, wherever TCP splits it;
// nothing outside a response reaches a client; an HTTP/1.0 client still gets the data alone; a
// client connection stays usable after a stream; a slow reader holds the upstream back.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { connect, type Socket } from 'node:net'
import { once } from 'node:events'
import { createHash } from 'node:crypto'
import { request } from 'node:http'
import { setTimeout as sleep } from 'node:timers/promises'
import { spawnRelay, type RelayProcess } from '../helpers/relay.js'
import { onEachRequest, startRawUpstream, startUpstream, waitFor, type Upstream } from '../helpers/upstreams.js'
import { parseResponse, readUntilClose } from '../helpers/http.js'
import { upstreamErrorCounts } from '../helpers/metrics.js'

type TestContext = { after: (fn: () => Promise<void>) => void }

/** A raw upstream that answers each request with the pieces, written one by one, `gapMs` apart. */
async function scripted (t: TestContext, pieces: (path: string) => string[], gapMs = 5): Promise<Upstream & { sockets: number }> {
  let sockets = 0
  const upstream = await startRawUpstream((socket: Socket) => {
    sockets++
    const send = ([piece, ...rest]: string[]): void => {
      if (socket.destroyed || piece === undefined) return
      socket.write(piece, 'latin1')
      setTimeout(() => send(rest), gapMs)
    }
    onEachRequest(socket, (path) => send(pieces(path)))
  })
  t.after(() => upstream.close())
  return Object.defineProperty(upstream, 'sockets', { get: () => sockets }) as Upstream & { sockets: number }
}

async function relayFor (t: TestContext, url: string, env: Record<string, string> = {}): Promise<RelayProcess> {
  const relay = await spawnRelay({ UPSTREAM_URL: url, ...env })
  t.after(() => relay.stop())
  return relay
}

async function exchange (port: number, bytes: string, timeoutMs = 5000): Promise<ReturnType<typeof parseResponse>> {
  const socket = connect(port, '127.0.0.1')
  await once(socket, 'connect')
  socket.write(bytes)
  return await readUntilClose(socket, timeoutMs)
}

const HEAD = 'HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n'
const EVENTS = ['data: {"token":"one"}\n\n', 'data: {"token":"two"}\n\n', 'data: [DONE]\n\n']
const framed = EVENTS.map((e) => `${Buffer.byteLength(e).toString(16)}\r\n${e}\r\n`).join('') + '0\r\n\r\n'

test('a chunked stream split by TCP anywhere reaches the client whole, as a chunked response that ends', async (t) => {
  // Every split of the framing: inside a size line, between CR and LF, inside data, in the last chunk.
  const cuts = [1, 2, 3, 5, 8, 13, 21, 34, 50, framed.length - 4, framed.length - 2, framed.length - 1]
  const upstream = await scripted(t, (path) => {
    const cut = Number(path.slice(1))
    return [HEAD + framed.slice(0, cut), framed.slice(cut)]
  })
  const relay = await relayFor(t, upstream.url)
  for (const cut of cuts) {
    const res = await exchange(relay.port, `GET /${cut} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`)
    assert.equal(res.headers['transfer-encoding'], 'chunked', `cut ${cut}`)
    assert.equal(res.body, EVENTS.join(''), `cut ${cut}`)
    assert.equal(res.complete, true, `cut ${cut}`)
    assert.equal((res.text.match(/\r\n0\r\n\r\n/g) ?? []).length, 1, `cut ${cut}: one last chunk`)
  }
  assert.equal((await upstreamErrorCounts(relay.url)).reset, 0)
})

for (const [what, bad] of [
  ['a size that is not hex', 'zz\r\nnope\r\n'],
  ['data longer than its size', '3\r\nabcdef\r\n'],
  ['a size line without CRLF', '5\nhello\r\n'],
  ['a chunk size of 2^48', '1000000000000\r\n']
] as const) {
  test(`malformed chunked framing (${what}) cuts the client's response mid-stream, counted as an invalid response`, async (t) => {
    const upstream = await scripted(t, () => [HEAD + '9\r\ndata: 1\n\n\r\n', bad, '0\r\n\r\n'])
    const relay = await relayFor(t, upstream.url)
    const res = await exchange(relay.port, 'GET /bad HTTP/1.1\r\nHost: x\r\nX-Request-Id: bad-framing\r\n\r\n')
    assert.equal(res.statusCode, 200)
    assert.equal(res.complete, false, 'never ends like a complete response')
    assert.ok(res.body.startsWith('data: 1\n\n'))
    assert.doesNotMatch(res.text, /nope|abcdef/)
    assert.equal((await upstreamErrorCounts(relay.url)).reset, 1)
    const line = await relay.logs.waitFor((l) => l.reqId === 'bad-framing' && l.statusCode !== undefined)
    assert.equal(line.msg, 'response cut: the upstream failed')
  })
}

test('bytes after a response never reach a client: not the same one, not the next', async (t) => {
  const smuggled = 'HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\nsmuggled'
  const upstream = await scripted(t, (path) => path === '/chunked'
    ? [HEAD + '2\r\nok\r\n0\r\n\r\n' + smuggled]
    : ['HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok' + smuggled])
  const relay = await relayFor(t, upstream.url)
  for (const path of ['/chunked', '/length', '/chunked', '/length']) {
    const res = await exchange(relay.port, `GET ${path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`)
    assert.equal(res.body, 'ok', path)
    assert.doesNotMatch(res.text, /smuggled/, path)
  }
  // A connection that sent them is never used again.
  assert.equal(upstream.sockets, 4)
})

test('an HTTP/1.0 client gets a chunked upstream\'s data alone, ended by the connection\'s close', async (t) => {
  const upstream = await scripted(t, () => [HEAD + framed.slice(0, 10), framed.slice(10)])
  const relay = await relayFor(t, upstream.url)
  const res = await exchange(relay.port, 'GET /old HTTP/1.0\r\n\r\n')
  assert.equal(res.statusCode, 200)
  assert.equal(res.headers['transfer-encoding'], undefined)
  assert.equal(res.text.slice(res.text.indexOf('\r\n\r\n') + 4), EVENTS.join(''))
})

test('a client connection stays usable after a passed-through stream, and so does the upstream\'s', async (t) => {
  const upstream = await scripted(t, (path) => path === '/stream' ? [HEAD + framed.slice(0, 20), framed.slice(20)] : ['HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\ndone'])
  const relay = await relayFor(t, upstream.url)
  const socket = connect(relay.port, '127.0.0.1')
  await once(socket, 'connect')
  let text = ''
  socket.setEncoding('latin1')
  socket.on('data', (chunk: string) => { text += chunk })
  socket.write('GET /stream HTTP/1.1\r\nHost: x\r\n\r\n')
  await waitFor(() => text.endsWith('\r\n0\r\n\r\n'), 5000, 'the stream to end')
  socket.write('GET /after HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')
  await once(socket, 'close')
  const second = parseResponse(text.slice(text.indexOf('\r\n0\r\n\r\n') + 7))
  assert.equal(second.statusCode, 200)
  assert.equal(second.body, 'done')
  assert.equal(upstream.sockets, 1, 'one upstream connection served both')
})

test('a client that reads slowly holds the upstream back, and gets every byte in order', async (t) => {
  // Far more than loopback's socket buffers hold (a few MB each way), so only backpressure explains a stop.
  const size = 64 * 1024 * 1024
  let written = 0
  const upstream = await startUpstream((req, res) => {
    req.resume()
    res.writeHead(200, { 'content-type': 'application/octet-stream' })
    const chunk = Buffer.alloc(64 * 1024)
    const write = (): void => {
      while (written < size) {
        chunk.fill(written / chunk.length % 251)
        written += chunk.length
        if (!res.write(chunk)) { res.once('drain', write); return }
      }
      res.end()
    }
    write()
  })
  t.after(() => upstream.close())
  const relay = await relayFor(t, upstream.url)
  const req = request(`${relay.url}/big`, { agent: false })
  req.end()
  const [res] = await once(req, 'response') as [import('node:http').IncomingMessage]
  const hash = createHash('sha256')
  let received = 0
  res.pause()
  await sleep(500)
  // The relay read ahead only what the sockets' buffers hold, not the whole body.
  assert.ok(written < size / 2, `the upstream wrote ${written} bytes before the client read any`)
  res.on('data', (chunk: Buffer) => { hash.update(chunk); received += chunk.length })
  res.resume()
  await once(res, 'end')
  const expected = createHash('sha256')
  for (let at = 0; at < size; at += 64 * 1024) expected.update(Buffer.alloc(64 * 1024, at / (64 * 1024) % 251))
  assert.equal(received, size)
  assert.equal(hash.digest('hex'), expected.digest('hex'))
})
