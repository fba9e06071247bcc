// What makes a request one the relay refuses before anything else looks at it. Pure: each rule reads
// the request line and the raw header list Node.js parsed.

/** The methods the relay forwards. CONNECT and TRACE are not among them (answered 405). */
export const PROXIED_METHODS = ['DELETE', 'GET', 'HEAD', 'OPTIONS', 'PATCH', 'POST', 'PUT']

export type Refusal =
  | { rule: 'too-many-headers', limit: number }
  | { rule: 'method' }
  | { rule: 'target' }
  | { rule: 'missing-host' }
  | { rule: 'duplicate-host' }
  | { rule: 'framing' }
  | { rule: 'transfer-coding' }
  | { rule: 'expectation' }

export interface RequestShape {
  method: string
  /** The target after normalisation: a path starting with `/` unless it was `*` or junk */
  url: string
  httpVersion: string
  /** Name, value, name, value, … as Node.js gives them */
  rawHeaders: string[]
}

/** Returns why a request must be refused, or undefined when it may go on. */
export function refusalOf (request: RequestShape, maxHeaderFields: number): Refusal | undefined {
  const { rawHeaders } = request
  // Node.js keeps one field more than the relay allows: at that count, more may have been dropped.
  if (rawHeaders.length > maxHeaderFields * 2) return { rule: 'too-many-headers', limit: maxHeaderFields }
  // CONNECT asks for a tunnel, which a relay to one upstream never opens.
  if (request.method === 'CONNECT') return { rule: 'method' }
  // rewriteUrl turned origin- and absolute-form targets into a path; what is left (`*`, an
  // authority-form CONNECT target, junk) means nothing here and must not reach the proxy.
  if (request.url.charCodeAt(0) !== 47 /* / */) return { rule: 'target' }
  let hosts = 0
  let transferEncoding: string | undefined
  let expect: string | undefined
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const name = rawHeaders[i] as string
    if (name.length === 4 && name.toLowerCase() === 'host') hosts++
    else if (name.length === 17 && name.toLowerCase() === 'transfer-encoding') transferEncoding = transferEncoding === undefined ? rawHeaders[i + 1] : `${transferEncoding}, ${rawHeaders[i + 1] as string}`
    else if (name.length === 6 && name.toLowerCase() === 'expect') expect = rawHeaders[i + 1]
  }
  // RFC 9112 §3.2: an HTTP/1.1 request without Host is refused; Node.js keeps the first of several,
  // where the RFC says to refuse the ambiguity.
  if (hosts === 0 && request.httpVersion === '1.1') return { rule: 'missing-host' }
  if (hosts > 1) return { rule: 'duplicate-host' }
  if (transferEncoding !== undefined) {
    const codings = transferEncoding.toLowerCase().split(',').map((coding) => coding.trim())
    // RFC 9112 §6.3: without chunked as the final coding the body's length cannot be known: 400.
    if (codings.at(-1) !== 'chunked') return { rule: 'framing' }
    // Node.js decodes `chunked` only and passes `gzip, chunked` on as if the bytes were plain: refuse
    // the codings the relay does not implement (RFC 9112 §6.1: 501).
    if (codings.length > 1) return { rule: 'transfer-coding' }
  }
  if (expect !== undefined && expect.trim().toLowerCase() !== '100-continue') return { rule: 'expectation' }
  return undefined
}

/** True when the client waits for `100 Continue` before it sends the body. */
export function expectsContinue (headers: Record<string, string | string[] | undefined>): boolean {
  const expect = headers.expect
  return typeof expect === 'string' && expect.trim().toLowerCase() === '100-continue'
}
