// A stand-in for the GPU server (server.py), small enough to read in a minute: `npm run dev` puts it
// behind the relay, and the tests use it as their well-behaved upstream.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'

const WORDS = ['Tokens', 'stream', 'through', 'the', 'relay', 'one', 'event', 'at', 'a', 'time.']

function sendJson (res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body)
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) })
  res.end(text)
}

async function readBody (req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = []
  for await (const chunk of req) chunks.push(chunk as Buffer)
  return Buffer.concat(chunks)
}

/** Streams `count` Server-Sent Events, one every `intervalMs`, then `data: [DONE]`. */
function streamTokens (req: IncomingMessage, res: ServerResponse, count: number, intervalMs: number): void {
  res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' })
  res.flushHeaders()
  let sent = 0
  const timer = setInterval(() => {
    if (sent === count) {
      clearInterval(timer)
      res.end('data: [DONE]\n\n')
      return
    }
    const token = WORDS[sent % WORDS.length]
    res.write(`data: ${JSON.stringify({ index: sent, token })}\n\n`)
    sent++
  }, intervalMs)
  // A client that leaves stops the generation (what the relay's cancellation is for).
  res.on('close', () => clearInterval(timer))
  req.resume()
}

function numberParam (url: URL, name: string, fallback: number, max: number): number {
  const value = Number(url.searchParams.get(name) ?? fallback)
  return Number.isFinite(value) && value >= 0 ? Math.min(value, max) : fallback
}

export function handleDemoRequest (req: IncomingMessage, res: ServerResponse): void {
  const url = new URL(req.url ?? '/', 'http://demo.invalid')
  const route = `${req.method ?? 'GET'} ${url.pathname}`
  switch (route) {
    case 'GET /':
    case 'GET /api/health':
      sendJson(res, 200, { status: 'ok', service: 'demo-upstream' })
      return
    case 'GET /v1/models':
      sendJson(res, 200, { object: 'list', data: [{ id: 'demo-model', object: 'model' }] })
      return
    case 'GET /stream':
      streamTokens(req, res, numberParam(url, 'tokens', 10, 10_000), numberParam(url, 'interval', 100, 60_000))
      return
    case 'POST /v1/chat/completions':
      readBody(req).then((body) => {
        let request: { stream?: unknown } = {}
        try { request = JSON.parse(body.toString('utf8') || '{}') } catch { return sendJson(res, 400, { error: 'invalid JSON' }) }
        if (request.stream === true) return streamTokens(req, res, WORDS.length, 50)
        sendJson(res, 200, { object: 'chat.completion', choices: [{ index: 0, message: { role: 'assistant', content: WORDS.join(' ') } }] })
      }, () => res.destroy())
      return
    case 'POST /echo':
    case 'PUT /echo':
      // Streams the body straight back, so an upload can be as large as the caller likes.
      res.writeHead(200, { 'content-type': req.headers['content-type'] ?? 'application/octet-stream' })
      req.pipe(res)
      return
    default:
      if (url.pathname === '/headers' || url.pathname.startsWith('/headers/')) {
        req.resume()
        sendJson(res, 200, { method: req.method, url: req.url, headers: req.headers })
        return
      }
      req.resume()
      sendJson(res, 404, { error: 'not found', path: url.pathname })
  }
}

export function createDemoUpstream (): Server {
  return createServer(handleDemoRequest)
}

/** Starts the demo upstream and resolves with the server and its port (0 picks a free one). */
export async function startDemoUpstream (port = 0, host = '127.0.0.1'): Promise<{ server: Server, port: number }> {
  const server = createDemoUpstream()
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(port, host, () => resolve())
  })
  return { server, port: (server.address() as AddressInfo).port }
}
