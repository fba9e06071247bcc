// A tiny HTTP/1.1 client over a raw socket, for what fetch won't send (absolute-form targets, odd
// headers) or won't show (how a response ended).
import { connect, type Socket } from 'node:net'
import { once } from 'node:events'
import { request, type IncomingMessage } from 'node:http'

export interface RawResponse {
  /** Everything the relay sent before it closed the connection */
  text: string
  statusCode: number
  headers: Record<string, string>
  body: string
  /** True when the socket closed after a complete message: a terminating chunk or the full length */
  complete: boolean
  /** False when the relay left the connection open and the reader gave up after its timeout */
  closedByServer: boolean
}

export function parseResponse (text: string): RawResponse {
  const headerEnd = text.indexOf('\r\n\r\n')
  const head = headerEnd === -1 ? text : text.slice(0, headerEnd)
  const [statusLine = '', ...lines] = head.split('\r\n')
  const headers: Record<string, string> = {}
  for (const line of lines) {
    const colon = line.indexOf(':')
    if (colon > 0) headers[line.slice(0, colon).toLowerCase()] = line.slice(colon + 1).trim()
  }
  const rawBody = headerEnd === -1 ? '' : text.slice(headerEnd + 4)
  let body = rawBody
  let complete = false
  if (headers['transfer-encoding'] === 'chunked') {
    body = ''
    let rest = rawBody
    for (;;) {
      const lineEnd = rest.indexOf('\r\n')
      if (lineEnd === -1) break
      const size = parseInt(rest.slice(0, lineEnd), 16)
      if (Number.isNaN(size)) break
      if (size === 0) { complete = rest.slice(lineEnd + 2).startsWith('\r\n'); break }
      body += rest.slice(lineEnd + 2, lineEnd + 2 + size)
      rest = rest.slice(lineEnd + 2 + size + 2)
    }
  } else if (headers['content-length'] !== undefined) {
    complete = Buffer.byteLength(rawBody) >= Number(headers['content-length'])
  }
  return { text, statusCode: Number(statusLine.split(' ')[1]), headers, body, complete, closedByServer: true }
}

/** Sends raw bytes, reads until the server closes the connection (or `timeoutMs`), parses the first response. */
export async function rawRequest (port: number, request: string | Buffer, timeoutMs = 5000): Promise<RawResponse> {
  const socket = connect(port, '127.0.0.1')
  await once(socket, 'connect')
  socket.write(request)
  return await readUntilClose(socket, timeoutMs)
}

export async function readUntilClose (socket: Socket, timeoutMs: number): Promise<RawResponse> {
  let text = ''
  socket.setEncoding('latin1')
  socket.on('data', (chunk: string) => { text += chunk })
  let timedOut = false
  const timer = setTimeout(() => { timedOut = true; socket.destroy() }, timeoutMs)
  await once(socket, 'close')
  clearTimeout(timer)
  return { ...parseResponse(text), closedByServer: !timedOut }
}

export interface Stream { events: string[], done: Promise<{ complete: boolean, text: string }> }

/** Opens an SSE stream on its own connection and collects what arrives. */
export async function openStream (url: string): Promise<Stream> {
  const req = request(url, { agent: false })
  req.end()
  const [res] = await once(req, 'response') as [IncomingMessage]
  const events: string[] = []
  let text = ''
  const done = new Promise<{ complete: boolean, text: string }>((resolve) => {
    res.setEncoding('utf8')
    res.on('data', (chunk: string) => {
      text += chunk
      for (const event of chunk.split('\n\n')) if (event.trim() !== '') events.push(event)
    })
    res.on('end', () => resolve({ complete: true, text }))
    res.on('error', () => resolve({ complete: false, text }))
    res.on('close', () => resolve({ complete: res.complete, text }))
  })
  return { events, done }
}
