// HTTP/1.1 over a raw socket, for what fetch won't send (absolute-form targets, odd headers, a
// body that never ends) or won't show (how a response ended, whether the server closed), and for
// moving a gigabyte without node:http's parser becoming the bottleneck (the benchmark).
import { connect, type Socket } from 'node:net'
import { once } from 'node:events'

export interface ResponseHead {
  /** NaN when the text does not start with an HTTP status line */
  statusCode: number
  /** Lower-cased names; a repeated header keeps its last value */
  headers: Record<string, string>
  /** Where the blank line after the head starts, or -1 when the head is not complete yet */
  headerEnd: number
}

/** The status line and headers at the start of `text` (complete or not). */
export function parseHead (text: string): ResponseHead {
  const headerEnd = text.indexOf('\r\n\r\n')
  const [statusLine = '', ...lines] = (headerEnd === -1 ? text : text.slice(0, headerEnd)).split('\r\n')
  const headers: Record<string, string> = {}
  for (const line of lines) {
    const colon = line.indexOf(':')
    if (colon > 0) headers[line.slice(0, colon).toLowerCase()] = line.slice(colon + 1).trim()
  }
  const status = /^HTTP\/1\.[01] (\d{3})/.exec(statusLine)
  return { statusCode: status === null ? NaN : Number(status[1]), headers, headerEnd }
}

/** Where a complete response with a Content-Length ends in `data`, or -1 while it is incomplete. */
export function responseEnd (data: string): number {
  const { headers, headerEnd } = parseHead(data)
  if (headerEnd < 0) return -1
  const length = headers['content-length']
  if (length === undefined) throw new Error(`a response without Content-Length: ${data.slice(0, headerEnd)}`)
  const end = headerEnd + 4 + Number(length)
  return data.length >= end ? end : -1
}

/**
 * Decodes a chunked body as it arrives (latin1 text in, body text out), chunk boundaries anywhere:
 * a proxy may split or merge what the upstream wrote. `done` once the last chunk and trailers are in.
 */
export class ChunkedDecoder {
  done = false
  #buffered = ''
  /** Body bytes left in the current chunk; -1 while a size line is due, -2 for the CRLF after the data, -3 in the trailers */
  #left = -1

  push (text: string): string {
    let out = ''
    let buf = this.#buffered + text
    while (!this.done) {
      if (this.#left > 0) {
        if (buf === '') break
        const n = Math.min(this.#left, buf.length)
        out += buf.slice(0, n)
        buf = buf.slice(n)
        this.#left = n === this.#left ? -2 : this.#left - n
        continue
      }
      if (this.#left === -2 && buf.length < 2) break
      const eol = buf.indexOf('\r\n')
      if (eol < 0) break
      const line = buf.slice(0, eol)
      buf = buf.slice(eol + 2)
      if (this.#left === -2) {
        if (line !== '') throw new Error(`chunked body: no CRLF after a chunk's data: ${JSON.stringify(line.slice(0, 40))}`)
        this.#left = -1
      } else if (this.#left === -3) {
        this.done = line === ''
      } else {
        const size = parseInt(line, 16) // a chunk extension after ';' is ignored
        if (!/^[0-9a-fA-F]+/.test(line) || !Number.isSafeInteger(size)) throw new Error(`chunked body: not a chunk size: ${JSON.stringify(line.slice(0, 40))}`)
        this.#left = size === 0 ? -3 : size
      }
    }
    this.#buffered = buf
    return out
  }
}

export interface RawResponse {
  /** Everything the server sent before it closed the connection */
  text: string
  statusCode: number
  headers: Record<string, string>
  body: string
  /** True when the socket closed after a complete message: a terminating chunk or the full length */
  complete: boolean
  /** False when the server left the connection open and the reader gave up after its timeout */
  closedByServer: boolean
}

/** The first response in `text`, its chunked body decoded. */
export function parseResponse (text: string): RawResponse {
  const { statusCode, headers, headerEnd } = parseHead(text)
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
  return { text, statusCode, headers, body, complete, closedByServer: true }
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
