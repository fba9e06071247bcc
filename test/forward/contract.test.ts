// The forwarder's boundary with @fastify/http-proxy, @fastify/reply-from and undici, held to what the
// relay relies on. @fastify/reply-from is pinned exactly in package.json: an upgrade is a deliberate
// act, and this file is what judges it. The app here is wired as src/plugins/proxy.ts wires the real
// one, with one difference where a case needs it: a dispatcher that hands reply-from's call on a
// turn of the event loop later, which the relay must survive as if nothing happened.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createRequire } from 'node:module'
import { connect, type Socket } from 'node:net'
import { once } from 'node:events'
import type { IncomingHttpHeaders } from 'node:http'
import Fastify, { type FastifyInstance } from 'fastify'
import { fastifyHttpProxy } from '@fastify/http-proxy'
import { parseUpstreamUrl } from '../../src/config.js'
import { CHANNEL_HEADER, Forwarder } from '../../src/forward/forwarder.js'
import '../../src/plugins/lifecycle.js'
import { readUntilClose } from '../helpers/http.js'
import { startRawUpstream, startUpstream, waitFor, type Upstream } from '../helpers/upstreams.js'

type TestContext = { after: (fn: () => Promise<void> | void) => void }
type ReplyFromRequest = Parameters<Forwarder['dispatcher']['request']>[0]
type ReplyFromCallback = Parameters<Forwarder['dispatcher']['request']>[1]

interface ProxyApp {
  app: FastifyInstance
  port: number
  forwarder: Forwarder
  failures: string[]
}

async function proxyApp (t: TestContext, upstream: Upstream, { deferred = false, dropToken = false } = {}): Promise<ProxyApp> {
  const failures: string[] = []
  const forwarder = new Forwarder({
    upstream: parseUpstreamUrl(upstream.url) as NonNullable<ReturnType<typeof parseUpstreamUrl>>,
    timeoutMs: 2000,
    bodyLimitBytes: 1024,
    connections: 16,
    onFailure: (_reply, failure) => { failures.push(failure.reason) },
    onFirstByte: () => {}
  })
  const app = Fastify()
  app.decorateRequest('arrival', null as never)
  app.addHook('onRequest', (request, reply, done) => {
    request.arrival = { ip: '198.51.100.1', protocol: 'http', host: 'relay.example' }
    forwarder.begin(request, reply)
    reply.raw.once('close', () => forwarder.release(request))
    done()
  })
  app.addHook('onClose', async () => { await forwarder.close() })
  const request = (options: ReplyFromRequest, callback: ReplyFromCallback): void => {
    if (dropToken) delete options.headers[CHANNEL_HEADER]
    if (deferred) setImmediate(() => forwarder.dispatcher.request(options, callback))
    else forwarder.dispatcher.request(options, callback)
  }
  app.removeAllContentTypeParsers()
  await app.register(fastifyHttpProxy, {
    upstream: upstream.url,
    undici: { request } as never,
    replyOptions: {
      retryDelay: () => null,
      rewriteRequestHeaders: (req, headers) => forwarder.requestHeaders(req as never, headers as IncomingHttpHeaders),
      onError: ((reply: never, { error }: { error: Error }) => forwarder.onError(reply, error)) as never,
      onResponse: () => {}
    }
  })
  await app.listen({ port: 0, host: '127.0.0.1' })
  t.after(() => app.close())
  return { app, port: (app.server.address() as { port: number }).port, forwarder, failures }
}

async function upstreamWith (t: TestContext, ...args: Parameters<typeof startUpstream>): Promise<Upstream> {
  const upstream = await startUpstream(...args)
  t.after(() => upstream.close())
  return upstream
}

async function rawUpstreamWith (t: TestContext, onSocket: (socket: Socket) => void): Promise<Upstream> {
  const upstream = await startRawUpstream((socket) => { socket.on('error', () => {}); onSocket(socket) })
  t.after(() => upstream.close())
  return upstream
}

test('@fastify/http-proxy forwards through the @fastify/reply-from that package.json pins', () => {
  const require = createRequire(import.meta.url)
  const fromProxy = createRequire(require.resolve('@fastify/http-proxy')).resolve('@fastify/reply-from')
  assert.equal(fromProxy, require.resolve('@fastify/reply-from'), 'http-proxy would use another copy than the one pinned (and tested)')
  const pinned = (require('../../package.json') as { dependencies: Record<string, string> }).dependencies['@fastify/reply-from']
  assert.match(pinned ?? '', /^\d+\.\d+\.\d+$/, 'pinned exactly')
  assert.equal((require('@fastify/reply-from/package.json') as { version: string }).version, pinned)
})

for (const deferred of [false, true]) {
  test(`the channel delivers each reply its own response, and never reaches the upstream (reply-from's call ${deferred ? 'deferred' : 'as it comes'})`, async (t) => {
    const upstream = await upstreamWith(t, (req, res) => {
      req.resume()
      setTimeout(() => res.end(JSON.stringify({ url: req.url, channel: req.headers[CHANNEL_HEADER] ?? null })), Math.random() * 20)
    })
    const { port } = await proxyApp(t, upstream, { deferred })
    const answers = await Promise.all(Array.from({ length: 50 }, async (_, i) => await (await fetch(`http://127.0.0.1:${port}/item/${i}`)).json() as { url: string, channel: unknown }))
    answers.forEach((answer, i) => assert.deepEqual(answer, { url: `/item/${i}`, channel: null }))
  })
}

test('a request whose channel token went missing is a named error, not a TypeError', async (t) => {
  const upstream = await upstreamWith(t, (req, res) => { req.resume(); res.end('never') })
  const { port } = await proxyApp(t, upstream, { dropToken: true })
  const res = await fetch(`http://127.0.0.1:${port}/x`)
  assert.equal(res.status, 500)
  assert.equal(((await res.json()) as { code: string }).code, 'RELAY_FORWARDER_CHANNEL')
  assert.equal(upstream.requests.length, 0)
})

for (const deferred of [false, true]) {
  test(`the head goes out before a body that arrives in the same packet (${deferred ? 'deferred' : 'as it comes'})`, async (t) => {
    const upstream = await rawUpstreamWith(t, (socket) => {
      socket.once('data', () => {
        socket.end('HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 11\r\nX-From: upstream\r\nConnection: close\r\n\r\nhello world')
      })
    })
    const { port } = await proxyApp(t, upstream, { deferred })
    for (let i = 0; i < 5; i++) {
      const socket = connect(port, '127.0.0.1')
      await once(socket, 'connect')
      socket.write('GET /x HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')
      const res = await readUntilClose(socket, 5000)
      assert.match(res.text, /^HTTP\/1\.1 200 OK\r\n/)
      assert.equal(res.headers['x-from'], 'upstream')
      assert.equal(res.body, 'hello world')
      assert.equal(res.complete, true)
    }
  })
}

test('retries are never made: a 503 and a connection closed before the headers each reach the upstream once', async (t) => {
  const busy = await upstreamWith(t, (req, res) => { req.resume(); res.writeHead(503, { 'retry-after': '0' }).end('busy') })
  const first = await proxyApp(t, busy)
  const res = await fetch(`http://127.0.0.1:${first.port}/v1/models`)
  assert.equal(res.status, 503)
  assert.equal(await res.text(), 'busy')
  await new Promise((resolve) => setTimeout(resolve, 300))
  assert.equal(busy.requests.length, 1)

  let attempts = 0
  const closing = await rawUpstreamWith(t, (socket) => { socket.once('data', () => { attempts++; socket.destroy() }) })
  const second = await proxyApp(t, closing)
  const closed = await fetch(`http://127.0.0.1:${second.port}/v1/models`)
  assert.equal(closed.status, 502)
  assert.equal(((await closed.json()) as { code: string }).code, 'RELAY_UPSTREAM_CLOSED')
  await new Promise((resolve) => setTimeout(resolve, 300))
  assert.equal(attempts, 1)
  assert.deepEqual(second.failures, ['reset'])
})

test('an upstream error mid-body cuts the client\'s response, and is counted once', async (t) => {
  const upstream = await rawUpstreamWith(t, (socket) => {
    socket.once('data', () => {
      socket.write('HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n9\r\ndata: 1\n\n\r\n')
      setTimeout(() => socket.destroy(), 50)
    })
  })
  const { port, failures } = await proxyApp(t, upstream)
  const socket = connect(port, '127.0.0.1')
  await once(socket, 'connect')
  socket.write('GET /stream HTTP/1.1\r\nHost: x\r\n\r\n')
  const res = await readUntilClose(socket, 5000)
  assert.equal(res.statusCode, 200)
  assert.equal(res.body, 'data: 1\n\n')
  assert.equal(res.complete, false)
  assert.deepEqual(failures, ['reset'])
})

test('a client that aborts cancels the upstream request, before and after the response head', async (t) => {
  const closed: string[] = []
  const upstream = await upstreamWith(t, (req, res) => {
    req.resume()
    res.on('close', () => { if (!res.writableFinished) closed.push(req.url ?? '') })
    if (req.url === '/streaming') {
      res.writeHead(200, { 'content-type': 'text/event-stream' })
      res.write('data: 1\n\n')
    }
  })
  const { port, failures } = await proxyApp(t, upstream)
  for (const path of ['/thinking', '/streaming']) {
    const socket = connect(port, '127.0.0.1')
    await once(socket, 'connect')
    socket.write(`GET ${path} HTTP/1.1\r\nHost: x\r\n\r\n`)
    await waitFor(() => upstream.requests.some((r) => r.url === path), 5000, `${path} upstream`)
    if (path === '/streaming') await once(socket, 'data')
    socket.destroy()
    await waitFor(() => closed.includes(path), 2000, `${path} cancelled`)
  }
  assert.deepEqual(failures, [], 'a cancellation is not the upstream\'s failure')
})

test('the upstream client: an unasked 100 Continue is skipped, a reset ends nothing', async (t) => {
  const upstream = await rawUpstreamWith(t, (socket) => {
    socket.once('data', (request: Buffer) => {
      if (request.toString().startsWith('GET /continue')) {
        socket.write('HTTP/1.1 100 Continue\r\n\r\n')
        socket.end('HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok')
      } else {
        socket.write('HTTP/1.1 200 OK\r\nConnection: close\r\n\r\npartial')
        setTimeout(() => socket.resetAndDestroy(), 50)
      }
    })
  })
  const { port, failures } = await proxyApp(t, upstream)
  for (let i = 0; i < 3; i++) {
    const ok = await fetch(`http://127.0.0.1:${port}/continue`)
    assert.equal(ok.status, 200)
    assert.equal(await ok.text(), 'ok')
  }
  const socket = connect(port, '127.0.0.1')
  await once(socket, 'connect')
  socket.write('GET /reset HTTP/1.1\r\nHost: x\r\n\r\n')
  const cut = await readUntilClose(socket, 5000)
  assert.equal(cut.body, 'partial')
  assert.equal(cut.complete, false)
  assert.deepEqual(failures, ['reset'])
})
