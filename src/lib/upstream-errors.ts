// Why an upstream request failed, in three forms: a metric reason, a status, and words for the client
// that never name the upstream (the relay is public; the GPU host stays hidden).

export const UPSTREAM_ERROR_REASONS = ['connect', 'dns', 'timeout', 'reset'] as const
export type UpstreamErrorReason = typeof UPSTREAM_ERROR_REASONS[number]

export interface UpstreamFailure {
  reason: UpstreamErrorReason
  statusCode: 502 | 504
  message: string
  /** The most specific error code found, for the log line */
  code: string | undefined
}

const DNS = new Set(['ENOTFOUND', 'EAI_AGAIN', 'EAI_NODATA', 'EAI_NONAME', 'EAI_FAIL'])
const CONNECT = new Set(['ECONNREFUSED', 'EHOSTUNREACH', 'ENETUNREACH', 'EHOSTDOWN', 'ENETDOWN', 'EADDRNOTAVAIL'])
const CONNECT_TIMEOUT = new Set(['UND_ERR_CONNECT_TIMEOUT', 'ETIMEDOUT'])
const RESPONSE_TIMEOUT = new Set(['UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT', 'FST_REPLY_FROM_GATEWAY_TIMEOUT'])
const ABORTED = new Set(['UND_ERR_ABORTED', 'ABORT_ERR'])
const TLS = /CERT|SSL|TLS|UNABLE_TO_(GET|VERIFY)/

/** The error codes along an error's `cause` chain, outermost first. */
function codesOf (err: unknown): string[] {
  const codes: string[] = []
  for (let e = err, depth = 0; e !== null && typeof e === 'object' && depth < 8; depth++) {
    const code = (e as { code?: unknown }).code
    if (typeof code === 'string') codes.push(code)
    const name = (e as { name?: unknown }).name
    if (name === 'AbortError') codes.push('ABORT_ERR')
    // undici's parser errors do not always carry a code.
    if (name === 'HTTPParserError' && typeof code !== 'string') codes.push('HPE_INVALID')
    e = (e as { cause?: unknown }).cause
  }
  return codes
}

/** True when the request was cancelled on purpose (the client went away), not failed by the upstream. */
export function isAbort (err: unknown): boolean {
  return codesOf(err).some((code) => ABORTED.has(code))
}

/** Classifies an upstream failure. Call isAbort first: an abort is not the upstream's fault. */
export function classifyUpstreamError (err: unknown): UpstreamFailure {
  const codes = codesOf(err)
  // The innermost code is the most specific (reply-from wraps undici's, which wraps the socket's).
  const code = codes[codes.length - 1]
  const has = (set: Set<string>): boolean => codes.some((c) => set.has(c))
  if (has(DNS)) {
    return { reason: 'dns', statusCode: 502, code, message: 'The upstream server name could not be resolved' }
  }
  if (has(CONNECT_TIMEOUT)) {
    return { reason: 'connect', statusCode: 504, code, message: 'The upstream server did not accept the connection in time' }
  }
  if (has(CONNECT)) {
    return { reason: 'connect', statusCode: 502, code, message: 'The upstream server refused the connection' }
  }
  if (codes.some((c) => TLS.test(c))) {
    return { reason: 'connect', statusCode: 502, code, message: 'A secure connection to the upstream server could not be established' }
  }
  if (has(RESPONSE_TIMEOUT)) {
    return { reason: 'timeout', statusCode: 504, code, message: 'The upstream server did not respond in time' }
  }
  if (codes.some((c) => c.startsWith('HPE_') || c === 'FST_REPLY_FROM_BAD_GATEWAY')) {
    return { reason: 'reset', statusCode: 502, code, message: 'The upstream server sent an invalid response' }
  }
  return { reason: 'reset', statusCode: 502, code, message: 'The upstream server closed the connection unexpectedly' }
}
