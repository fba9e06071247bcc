// Reading an upstream's HTTP/1.1 response, strictly and incrementally: the head (status line and
// header fields), then the body's framing. Pure: bytes in, results out. The forwarder uses it to pass a
// body's bytes to the client as they arrive (src/forward/upstream-pool.ts), so everything that could
// let an upstream smuggle a second response, or end a response early, is refused here.

export type Framing =
  /** `Content-Length` bytes */
  | 'length'
  /** `Transfer-Encoding: chunked` */
  | 'chunked'
  /** until the connection closes (no length, no chunking) */
  | 'close'
  /** no body at all (1xx, 204, 304, an answer to HEAD) */
  | 'none'

export interface ResponseHead {
  /** 0 for HTTP/1.0, 1 for HTTP/1.1 */
  minorVersion: number
  statusCode: number
  /** name, value, name, value, … as sent (latin1) */
  rawHeaders: string[]
  framing: Framing
  /** With framing 'length' */
  contentLength: number
  /** The connection may carry another request after this response */
  keepAlive: boolean
  /** The upstream's `Keep-Alive: timeout=N`, in ms, if it sent one */
  keepAliveTimeoutMs: number | undefined
}

export class ResponseError extends Error {
  readonly code: string
  constructor (code: 'RELAY_INVALID_RESPONSE' | 'RELAY_HEADERS_OVERFLOW', message: string) {
    super(message)
    this.code = code
  }
}

const invalid = (why: string): ResponseError => new ResponseError('RELAY_INVALID_RESPONSE', `invalid response from the upstream: ${why}`)

const STATUS_LINE = /^HTTP\/1\.([01]) ([1-5]\d\d)(?: [\t\x20-\x7e\x80-\xff]*)?$/
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/
// Anywhere in a head: a control character other than the tab, and the CR and LF of line ends.
const CONTROL = /[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]/ // eslint-disable-line no-control-regex -- finding them is the point
const DIGITS = /^\d{1,15}$/

/**
 * Parses a response head from `buffer` (which starts at a response). Returns the head and the number
 * of bytes it took, or undefined while the head is incomplete; throws a ResponseError for a head that
 * is not strict HTTP/1.1, or longer than `maxHeadBytes`.
 */
export function parseResponseHead (buffer: Buffer, requestMethod: string, maxHeadBytes: number): { head: ResponseHead, length: number } | undefined {
  const end = buffer.indexOf('\r\n\r\n')
  if (end === -1) {
    if (buffer.length > maxHeadBytes) throw new ResponseError('RELAY_HEADERS_OVERFLOW', 'the upstream sent a response head over the size limit')
    return undefined
  }
  if (end + 4 > maxHeadBytes) throw new ResponseError('RELAY_HEADERS_OVERFLOW', 'the upstream sent a response head over the size limit')
  const text = buffer.toString('latin1', 0, end)
  if (CONTROL.test(text)) throw invalid('a control character in the head')
  const lines = text.split('\r\n')
  const status = STATUS_LINE.exec(lines[0] as string)
  if (status === null) throw invalid('a malformed status line')
  const minorVersion = Number(status[1])
  const statusCode = Number(status[2])

  const rawHeaders: string[] = []
  let contentLength: number | undefined
  let transferEncoding: string | undefined
  let connection = ''
  let keepAliveTimeoutMs: number | undefined
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i] as string
    // A bare LF inside a line, or a folded line, could hide a field from one reader and not another.
    if (line.includes('\n') || line.includes('\r')) throw invalid('a bare CR or LF in the head')
    if (line.charCodeAt(0) === 32 || line.charCodeAt(0) === 9) throw invalid('an obsolete folded header line')
    const colon = line.indexOf(':')
    if (colon <= 0) throw invalid('a header line without a name')
    const name = line.slice(0, colon)
    if (!TOKEN.test(name)) throw invalid('a header name that is not a token')
    const value = line.slice(colon + 1).trim()
    const lower = name.toLowerCase()
    if (lower === 'content-length') {
      // Several lengths, or a list, are only acceptable when they all agree (RFC 9110 §8.6).
      for (const part of value.split(',')) {
        const trimmed = part.trim()
        if (!DIGITS.test(trimmed)) throw invalid('a Content-Length that is not a number')
        const length = Number(trimmed)
        if (contentLength !== undefined && contentLength !== length) throw invalid('conflicting Content-Length values')
        contentLength = length
      }
    } else if (lower === 'transfer-encoding') {
      transferEncoding = transferEncoding === undefined ? value : `${transferEncoding}, ${value}`
    } else if (lower === 'connection') {
      connection += `,${value.toLowerCase()}`
    } else if (lower === 'keep-alive') {
      const timeout = /(?:^|,)\s*timeout\s*=\s*(\d{1,6})/i.exec(value)
      if (timeout !== null) keepAliveTimeoutMs = Number(timeout[1]) * 1000
    }
    rawHeaders.push(name, value)
  }

  let framing: Framing
  if (statusCode < 200 || statusCode === 204 || statusCode === 304 || requestMethod === 'HEAD') {
    framing = 'none'
  } else if (transferEncoding !== undefined) {
    // Both framings at once is the classic smuggling shape: refuse rather than choose (RFC 9112 §6.3).
    if (contentLength !== undefined) throw invalid('both Transfer-Encoding and Content-Length')
    if (transferEncoding.toLowerCase().split(',').map((coding) => coding.trim()).join(',') !== 'chunked') {
      throw invalid('a transfer coding other than chunked')
    }
    framing = 'chunked'
  } else if (contentLength !== undefined) {
    framing = contentLength === 0 ? 'none' : 'length'
  } else {
    framing = 'close'
  }
  const closes = connection.split(',').some((token) => token.trim() === 'close')
  const keepAlive = minorVersion === 1 && !closes && framing !== 'close' && statusCode !== 101
  return {
    head: { minorVersion, statusCode, rawHeaders, framing, contentLength: contentLength ?? 0, keepAlive, keepAliveTimeoutMs },
    length: end + 4
  }
}

// States of the chunked reader.
const SIZE = 0
const EXTENSION = 1
const SIZE_LF = 2
const DATA = 3
const DATA_CR = 4
const DATA_LF = 5
const TRAILER_START = 6
const TRAILER_LINE = 7
const TRAILER_LF = 8
const END_LF = 9
const DONE = 10

/** Longest chunk-size line (size and extensions) the reader accepts. */
const MAX_SIZE_LINE = 1024
/** Longest trailer section it reads (and drops). */
const MAX_TRAILERS = 16 * 1024

export interface ChunkedOutput {
  /** Bytes to pass on: the chunks' own framing and data (passthrough), or the data alone (decode). */
  bytes: Buffer[]
  /** The body ended in this input (the last chunk and trailers were read) */
  done: boolean
  /** Bytes of the input after the body's end: an upstream that sends them is not to be trusted. */
  extra: number
}

/**
 * Reads a chunked body incrementally and strictly. In passthrough mode it hands back the upstream's
 * bytes as they are (size lines, data and CRLFs of every chunk but the last), for a client that gets
 * a chunked response too, so nothing is re-parsed or re-framed; the last chunk and any trailers are
 * kept back, for the client's response to end with its own. In decode mode it hands back the data.
 * Malformed framing throws: the caller cuts the client's connection.
 */
export class ChunkedReader {
  readonly #passthrough: boolean
  #state = SIZE
  /** Digits of the size line read so far */
  #size = 0
  #sizeDigits = 0
  #lineLength = 0
  #remaining = 0
  #trailerBytes = 0
  /** A size line that began in an earlier input and is not complete yet (passthrough only) */
  #held: Buffer | undefined

  constructor (passthrough: boolean) {
    this.#passthrough = passthrough
  }

  get done (): boolean { return this.#state === DONE }

  read (input: Buffer): ChunkedOutput {
    const bytes: Buffer[] = []
    let buffer = input
    let heldLength = 0
    if (this.#held !== undefined) {
      heldLength = this.#held.length
      buffer = Buffer.concat([this.#held, input])
      this.#held = undefined
    }
    /** Where the bytes not handed back yet start (passthrough) */
    let from = 0
    /** Where the size line being read started */
    let lineStart = 0
    // The held bytes were read already: they are only handed back, with the rest of their line.
    let i = heldLength
    const length = buffer.length
    while (i < length && this.#state !== DONE) {
      const byte = buffer[i] as number
      switch (this.#state) {
        case SIZE: {
          if (this.#sizeDigits === 0 && this.#lineLength === 0) lineStart = i
          const digit = hexValue(byte)
          if (digit !== -1) {
            if (++this.#sizeDigits > 12) throw invalid('a chunk size too large')
            this.#size = this.#size * 16 + digit
          } else if (this.#sizeDigits === 0) {
            throw invalid('a chunk without a size')
          } else if (byte === 0x3b /* ; */ || byte === 0x20 || byte === 0x09) {
            // An extension, or the whitespace RFC 9112 allows before one: read to the end of the line.
            this.#state = EXTENSION
          } else if (byte === 0x0d) {
            this.#state = SIZE_LF
          } else {
            throw invalid('a malformed chunk size')
          }
          this.#line()
          i++
          break
        }
        case EXTENSION:
          if (byte === 0x0d) this.#state = SIZE_LF
          else if (byte < 0x20 && byte !== 0x09) throw invalid('a control character in a chunk extension')
          this.#line()
          i++
          break
        case SIZE_LF:
          if (byte !== 0x0a) throw invalid('a chunk size line without CRLF')
          i++
          this.#lineLength = 0
          this.#sizeDigits = 0
          if (this.#size === 0) {
            // The last chunk: everything before its size line goes on; it and the trailers stay here.
            if (this.#passthrough && lineStart > from) bytes.push(buffer.subarray(from, lineStart))
            from = length
            this.#state = TRAILER_START
          } else {
            this.#remaining = this.#size
            this.#size = 0
            this.#state = DATA
          }
          break
        case DATA: {
          const take = Math.min(this.#remaining, length - i)
          if (!this.#passthrough) bytes.push(buffer.subarray(i, i + take))
          this.#remaining -= take
          i += take
          if (this.#remaining === 0) this.#state = DATA_CR
          break
        }
        case DATA_CR:
          if (byte !== 0x0d) throw invalid('chunk data longer than its size')
          this.#state = DATA_LF
          i++
          break
        case DATA_LF:
          if (byte !== 0x0a) throw invalid('chunk data not followed by CRLF')
          this.#state = SIZE
          i++
          break
        case TRAILER_START:
          if (byte === 0x0d) {
            this.#state = END_LF
          } else {
            this.#state = TRAILER_LINE
            this.#trailer()
          }
          i++
          break
        case TRAILER_LINE:
          if (byte === 0x0d) this.#state = TRAILER_LF
          else if (byte === 0x0a || byte === 0) throw invalid('a malformed trailer')
          this.#trailer()
          i++
          break
        case TRAILER_LF:
          if (byte !== 0x0a) throw invalid('a trailer line without CRLF')
          this.#state = TRAILER_START
          i++
          break
        case END_LF:
          if (byte !== 0x0a) throw invalid('a last chunk without its final CRLF')
          this.#state = DONE
          i++
          break
      }
    }
    // After the last chunk's size line nothing is handed back: the trailers stay here.
    if (this.#passthrough && from < length && this.#state < TRAILER_START) {
      // Keep back an unfinished size line: it may turn out to be the last chunk's.
      const inSizeLine = this.#state === SIZE || this.#state === EXTENSION || this.#state === SIZE_LF
      const upTo = inSizeLine && (this.#sizeDigits > 0 || this.#lineLength > 0) ? Math.max(from, lineStart) : length
      if (upTo > from) bytes.push(upTo - from === input.length && heldLength === 0 ? input : buffer.subarray(from, upTo))
      if (upTo < length) this.#held = Buffer.from(buffer.subarray(upTo))
    }
    return { bytes, done: this.#state === DONE, extra: length - i }
  }

  #line (): void {
    if (++this.#lineLength > MAX_SIZE_LINE) throw invalid('a chunk size line too long')
  }

  #trailer (): void {
    if (++this.#trailerBytes > MAX_TRAILERS) throw invalid('trailers too long')
  }
}

function hexValue (byte: number): number {
  if (byte >= 0x30 && byte <= 0x39) return byte - 0x30
  const lower = byte | 0x20
  if (lower >= 0x61 && lower <= 0x66) return lower - 0x61 + 10
  return -1
}
