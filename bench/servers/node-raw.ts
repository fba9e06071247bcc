// Reference row "raw node:http + undici, no framework, no logging": about the least a Node.js relay
// can do per request (hop-by-hop headers dropped, bodies streamed both ways, a client that leaves
// aborts the upstream request). undici's stream() writes the upstream body straight into the
// response; request() + pipeline() cost about 40 % more CPU per request on the benchmark machine.
// Usage: node-raw.ts <port> <upstream URL>.
import { createServer, type IncomingHttpHeaders, type OutgoingHttpHeaders } from 'node:http'
import type { AddressInfo } from 'node:net'
import { Pool, type Dispatcher } from 'undici'

const [port = '0', upstream = 'http://127.0.0.1:1'] = process.argv.slice(2)
// No cap on upstream connections (a stream holds one for its whole length), as the relay's own pool.
const pool = new Pool(upstream, { connections: null, pipelining: 1, keepAliveTimeout: 4_000 })
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'te', 'trailer', 'upgrade', 'host'])

function endToEnd (headers: IncomingHttpHeaders | Record<string, string | string[] | undefined>): OutgoingHttpHeaders {
  const out: OutgoingHttpHeaders = {}
  for (const name in headers) {
    const value = headers[name]
    if (value !== undefined && !HOP_BY_HOP.has(name)) out[name] = value
  }
  return out
}

const server = createServer({ keepAliveTimeout: 95_000 }, (req, res) => {
  const abort = new AbortController()
  res.on('close', () => { if (!res.writableFinished) abort.abort() })
  const hasBody = req.headers['content-length'] !== undefined || req.headers['transfer-encoding'] !== undefined
  pool.stream({
    method: req.method as Dispatcher.HttpMethod,
    path: req.url ?? '/',
    headers: endToEnd(req.headers) as Record<string, string>,
    body: hasBody ? req : null,
    signal: abort.signal
  }, ({ statusCode, headers }) => {
    res.writeHead(statusCode, endToEnd(headers))
    return res
  }, (err) => {
    if (err === null) return
    if (res.headersSent) {
      res.destroy()
    } else {
      res.writeHead(502, { 'content-type': 'application/json' })
      res.end('{"error":"bad gateway"}')
    }
  })
})
server.listen(Number(port), '127.0.0.1', () => {
  console.log(JSON.stringify({ msg: 'ready', port: (server.address() as AddressInfo).port }))
})
for (const signal of ['SIGTERM', 'SIGINT'] as const) process.on(signal, () => process.exit(0))
