// The benchmark's clients against real loopback servers: a stream that loses or reorders an event,
// a transfer that loses a byte, and an answer that is not HTTP must each refuse the run.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createServer, type RequestListener } from 'node:http'
import { createServer as createNetServer, type AddressInfo, type Server, type Socket } from 'node:net'
import { once } from 'node:events'
import { download, parseSseEvent, timeSseStream, upload } from '../../bench/lib/clients.js'

async function serve (server: Server | ReturnType<typeof createServer>): Promise<{ url: string, close: () => Promise<void> }> {
  const sockets = new Set<Socket>()
  server.on('connection', (socket: Socket) => { sockets.add(socket); socket.once('close', () => sockets.delete(socket)) })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const { port } = server.address() as AddressInfo
  return {
    url: `http://127.0.0.1:${port}`,
    close: async () => {
      for (const socket of sockets) socket.destroy()
      server.close()
      await once(server, 'close')
    }
  }
}

/** Sends the events with these indexes, stamped like bench/servers/upstream.ts, 5 ms apart. */
function sse (indexes: number[]): RequestListener {
  return (req, res) => {
    res.writeHead(200, { 'content-type': 'text/event-stream' })
    let sent = 0
    const next = (): void => {
      if (sent === indexes.length) { res.end(); return }
      res.write(`data: {"i":${indexes[sent++] as number},"t":"${process.hrtime.bigint()}"}\n\n`)
      setTimeout(next, 5)
    }
    next()
  }
}

test('the upstream\'s send stamps parse, an event without data is refused', () => {
  assert.deepEqual(parseSseEvent('data: {"i":3,"t":"123456789012345"}'), { index: 3, sentNs: 123456789012345n })
  assert.throws(() => parseSseEvent('event: ping'), /without data/)
})

test('an SSE stream: first-event time and one delay per later event, on the same clock as the upstream', async (t) => {
  const server = await serve(createServer(sse([0, 1, 2, 3, 4])))
  t.after(server.close)
  const timing = await timeSseStream(server.url, 5, 5)
  assert.ok(timing.firstEventMs > 0 && timing.firstEventMs < 1000, `first event after ${timing.firstEventMs} ms`)
  assert.equal(timing.eventDelaysMs.length, 4)
  for (const delay of timing.eventDelaysMs) assert.ok(delay >= 0 && delay < 1000, `delay ${delay} ms`)
})

test('an SSE stream that reorders or loses an event is refused', async (t) => {
  const reordered = await serve(createServer(sse([0, 2, 1])))
  t.after(reordered.close)
  await assert.rejects(timeSseStream(reordered.url, 3, 5), /event 2 arrived where 1 was due/)
  const short = await serve(createServer(sse([0, 1])))
  t.after(short.close)
  await assert.rejects(timeSseStream(short.url, 3, 5), /2 of 3 events arrived/)
})

test('transfers: every byte counted up and down; a short count, a missing length or a non-HTTP answer is refused', async (t) => {
  const MB = 2 ** 20
  let lie = 0
  const server = await serve(createServer((req, res) => {
    if (req.url?.startsWith('/blob') === true) {
      res.writeHead(200, { 'content-length': 3 * MB })
      res.end(Buffer.alloc(3 * MB))
      return
    }
    let bytes = 0
    req.on('data', (chunk: Buffer) => { bytes += chunk.length })
    req.on('end', () => res.end(JSON.stringify({ bytes: bytes - lie })))
  }))
  t.after(server.close)
  assert.ok(await upload(server.url, 3 * MB) > 0)
  assert.ok(await download(server.url, 3 * MB) > 0)
  await assert.rejects(download(server.url, 2 * MB), /Content-Length 3145728, expected 2097152/)
  lie = 1
  await assert.rejects(upload(server.url, MB), /received 1048575 of 1048576 bytes/)

  const chunked = await serve(createServer((req, res) => { res.write('streamed '); res.end('without a length') }))
  t.after(chunked.close)
  await assert.rejects(download(chunked.url, 10), /without Content-Length/)
  const notHttp = await serve(createNetServer((socket) => socket.end('SSH-2.0-OpenSSH_9.2\r\n\r\n')))
  t.after(notHttp.close)
  await assert.rejects(download(notHttp.url, 10), /not HTTP\/1\.1/)
})
