// Header rules of a proxy (RFC 9110 section 7.6.1): hop-by-hop headers stay on their hop.

type Headers = Record<string, string | string[] | number | undefined>

/** Headers that describe one connection, never the message, in either direction. */
const HOP_BY_HOP = [
  'connection',
  'keep-alive',
  'proxy-connection',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'proxy-authorization',
  'proxy-authenticate',
  'http2-settings'
]

/**
 * Request headers a client must not be able to hand to the upstream: `expect` (undici cannot send it, and
 * the relay already answered the 100-continue), and forwarding headers the relay sets itself.
 */
const CLIENT_CONTROLLED = ['expect', 'forwarded', 'x-real-ip', 'x-forwarded-port', 'x-forwarded-prefix']

/** Deletes the hop-by-hop headers, also those named in `Connection`, from a headers object. */
export function removeHopByHop (headers: Headers): void {
  const connection = headers.connection
  if (connection !== undefined) {
    for (const name of String(connection).split(',')) {
      const trimmed = name.trim().toLowerCase()
      if (trimmed !== '') delete headers[trimmed]
    }
  }
  for (const name of HOP_BY_HOP) {
    if (headers[name] !== undefined) delete headers[name]
  }
}

export interface ForwardedFor {
  /** The client address, from the socket or a trusted proxy's X-Forwarded-For */
  ip: string
  /** http or https as the client saw it */
  protocol: string
  /** The Host the client asked for */
  host: string
  requestId: string
  /** GET and HEAD carry no body upstream, so their framing headers must not either. */
  hasBody: boolean
}

/** Rewrites a copy of the client's request headers into what the upstream receives. */
export function toUpstreamRequestHeaders (headers: Headers, forwarded: ForwardedFor): Headers {
  removeHopByHop(headers)
  for (const name of CLIENT_CONTROLLED) {
    if (headers[name] !== undefined) delete headers[name]
  }
  if (!forwarded.hasBody) {
    delete headers['content-length']
  }
  // Overwritten, never appended: a client-supplied X-Forwarded-For must not pass as the client address.
  headers['x-forwarded-for'] = forwarded.ip
  headers['x-forwarded-proto'] = forwarded.protocol
  headers['x-forwarded-host'] = forwarded.host
  headers['x-request-id'] = forwarded.requestId
  return headers
}

export interface ClientResponseHead {
  /** name, value, name, value, …: what writeHead sends (duplicates such as Set-Cookie kept apart) */
  headers: string[]
  /** True when the upstream declared the body's length */
  hasContentLength: boolean
}

/**
 * Turns the upstream's raw response headers (latin1 buffers or strings, name, value, …) into what the
 * client receives: hop-by-hop headers and those `Connection` names are dropped, the request id is the
 * relay's, Location-like values go through `location`, and a `contentLength` given replaces the
 * upstream's own.
 */
export function toClientResponseHead (raw: ReadonlyArray<Buffer | string>, requestId: string, location: (value: string) => string, contentLength?: number): ClientResponseHead {
  const headers: string[] = []
  let named: string[] | undefined
  let hasContentLength = false
  for (let i = 0; i < raw.length; i += 2) {
    const name = (raw[i] as Buffer | string).toString('latin1')
    const lower = name.toLowerCase()
    if (HOP_BY_HOP.includes(lower) || lower === 'x-request-id') {
      if (lower === 'connection') (named ??= []).push(...String(raw[i + 1]).toLowerCase().split(',').map((token) => token.trim()))
      continue
    }
    let value = (raw[i + 1] as Buffer | string).toString('latin1')
    if (lower === 'location' || lower === 'content-location') value = location(value)
    else if (lower === 'content-length') {
      // The length the body was read with, once, whatever list of equal values the upstream sent.
      if (contentLength !== undefined) continue
      hasContentLength = true
    }
    headers.push(name, value)
  }
  if (named !== undefined) {
    for (let i = headers.length - 2; i >= 0; i -= 2) {
      if (named.includes((headers[i] as string).toLowerCase())) headers.splice(i, 2)
    }
  }
  if (contentLength !== undefined) {
    headers.push('content-length', String(contentLength))
    hasContentLength = true
  }
  headers.push('x-request-id', requestId)
  return { headers, hasContentLength }
}
