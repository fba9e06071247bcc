// The benchmark's clients against real loopback servers: a stream that loses or reorders an event,
// a transfer that loses a byte, and an answer that is not HTTP must each refuse the run.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createServer, type RequestListener } from 'node:http'
import { createServer as createNetServer, type AddressInfo, type Server, type Socket } from 'node:net'
import { once } from 'node:events'
import { execFileSync, spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { download, parseSseEvent, parseTokenEvent, runTokenStreams, timeSseStream, upload } from '../../bench/lib/clients.js'

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

test('process.hrtime is one clock for every process on the machine (CLOCK_MONOTONIC): the send and receive stamps compare', () => {
  const before = process.hrtime.bigint()
  const child = BigInt(execFileSync(process.execPath, ['-p', 'String(process.hrtime.bigint())'], { encoding: 'utf8' }).trim())
  const after = process.hrtime.bigint()
  assert.ok(before < child && child < after, `${before} < ${child} < ${after}`)
})

test('token events: index, send stamp and the last mark parse; anything else is refused', () => {
  assert.deepEqual(parseTokenEvent('data: {"i":7,"t":123456789012,"token":"xx"}'), { index: 7, sentNs: 123456789012, last: false })
  assert.equal(parseTokenEvent('data: {"i":8,"t":1,"token":"x","last":true}').last, true)
  assert.throws(() => parseTokenEvent('data: {"t":1}'), /not a token event/)
})

test('token streams through the real upstream: 60-byte events, every one received in order, the window measured', async (t) => {
  const upstream = spawn(process.execPath, ['--import', 'tsx', fileURLToPath(new URL('../../bench/servers/upstream.ts', import.meta.url)), '0'], { stdio: ['ignore', 'pipe', 'inherit'] })
  t.after(() => upstream.kill())
  const [line] = await once(upstream.stdout, 'data') as [Buffer]
  const url = `http://127.0.0.1:${(JSON.parse(line.toString()) as { port: number }).port}`
  const one = await fetch(`${url}/tokens?run=one&streams=1&interval=5&window=20`)
  const events = (await one.text()).split(/(?<=\n\n)/)
  assert.ok(events.length >= 4)
  for (const event of events) assert.equal(Buffer.byteLength(event), 60, event)
  assert.equal(parseTokenEvent((events.at(-1) as string).trimEnd()).last, true)

  let windows = 0
  const result = await runTokenStreams({ url, streams: 20, intervalMs: 10, windowMs: 100, run: 'twenty', onWindowStart: () => windows++, onWindowEnd: () => windows++ })
  const stats = await (await fetch(`${url}/tokens/stats?run=twenty`)).json() as { opened: number, sent: number, ended: number, cut: number }
  assert.deepEqual([stats.opened, stats.ended, stats.cut], [20, 20, 0])
  assert.equal(result.received, stats.sent, 'nothing lost')
  assert.deepEqual([result.outOfOrder, result.cut, windows], [0, 0, 2])
  assert.ok(result.windowMs >= 90, `a window of ${result.windowMs} ms`)
  assert.ok(result.windowDelaysUs.length >= 20 * 8, `${result.windowDelaysUs.length} events in the window`)
  for (const delay of result.windowDelaysUs) assert.ok(delay >= 0, `received before it was sent: ${delay} µs`)

  // A stream the client leaves early: the events it never carried count as the upstream's unsent ones.
  const abort = new AbortController()
  const cut = await fetch(`${url}/tokens?run=cut&streams=1&interval=10&window=400`, { signal: abort.signal })
  const reader = (cut.body as ReadableStream<Uint8Array>).getReader()
  let text = ''
  while ((text.match(/\n\n/g) ?? []).length < 3) text += new TextDecoder().decode((await reader.read()).value)
  abort.abort()
  await new Promise((resolve) => setTimeout(resolve, 100))
  const after = await (await fetch(`${url}/tokens/stats?run=cut`)).json() as { sent: number, cut: number, unsent: number }
  assert.equal(after.cut, 1)
  assert.ok(Math.abs(after.sent + after.unsent - 41) <= 2, `${after.sent} sent + ${after.unsent} never sent ≈ the 41 events of 400 ms at 10 ms`)
})

/** Answers stream k with the events `plan(k)` gives, 5 ms apart; a null cuts the connection there. */
function planned (plan: (k: number) => Array<number | 'last' | null>): RequestListener {
  let k = 0
  return (req, res) => {
    const steps = plan(k++)
    res.writeHead(200, { 'content-type': 'text/event-stream' })
    const next = (): void => {
      const step = steps.shift()
      if (step === undefined) { res.end(); return }
      if (step === null) { res.destroy(); return }
      const i = step === 'last' ? 99 : step
      res.write(`data: {"i":${i},"t":${process.hrtime.bigint()},"token":"x"${step === 'last' ? ',"last":true' : ''}}\n\n`)
      setTimeout(next, 5)
    }
    next()
  }
}

test('token streams: a reordered event and a stream cut short are counted, not hidden', async (t) => {
  const server = await serve(createServer(planned((k) => k === 0 ? [0, 2, 1, 'last'] : [0, 1, null])))
  t.after(server.close)
  const result = await runTokenStreams({ url: server.url, streams: 2, intervalMs: 5, windowMs: 10, run: 'r' })
  assert.equal(result.received, 6)
  assert.equal(result.outOfOrder, 3, '2 after 0, 1 after 2, and the last event\'s index')
  assert.equal(result.cut, 1)
})

test('token streams: an answer other than 200, or streams that do not all open in time, reject the run', async (t) => {
  const refused = await serve(createServer((req, res) => { res.writeHead(503); res.end() }))
  t.after(refused.close)
  await assert.rejects(runTokenStreams({ url: refused.url, streams: 3, intervalMs: 5, windowMs: 10, run: 'r' }), /answered "HTTP\/1\.1 503/)
  let n = 0
  const stuck = await serve(createServer((req, res) => { if (n++ === 0) planned(() => [0, 1, 2, 'last'])(req, res) }))
  t.after(stuck.close)
  await assert.rejects(runTokenStreams({ url: stuck.url, streams: 2, intervalMs: 5, windowMs: 10, run: 'r', openTimeoutMs: 300 }), /1 of them open after/)
})
