// Why an upstream request failed, in three forms: a metric reason, a named error with a status, and
// words for the client that never name the upstream (the relay is public; the GPU host stays
// hidden). The codes looked for here are undici's, reply-from's and the socket's: they are the
// forwarder's to know, and nobody else's.
import createError, { type FastifyErrorConstructor } from '@fastify/error'
import type { RelayError } from '../errors.js'

export const UPSTREAM_ERROR_REASONS = ['connect', 'dns', 'timeout', 'reset'] as const
export type UpstreamErrorReason = typeof UPSTREAM_ERROR_REASONS[number]

// The codes of the failures the relay's upstream client (upstream-pool.ts) finds itself.
export const CONNECT_TIMEOUT = 'RELAY_CONNECT_TIMEOUT'
export const HEADERS_TIMEOUT = 'RELAY_HEADERS_TIMEOUT'
export const BODY_TIMEOUT = 'RELAY_BODY_TIMEOUT'
/** The connection closed (cleanly or not) before the response was complete */
export const UPSTREAM_EOF = 'RELAY_UPSTREAM_EOF'
/** From src/lib/h1-response.ts */
export const INVALID_RESPONSE = 'RELAY_INVALID_RESPONSE'
export const HEADERS_OVERFLOW = 'RELAY_HEADERS_OVERFLOW'

function define (code: string, statusCode: 502 | 504, message: string): FastifyErrorConstructor {
  return createError(code, message, statusCode, Error, false)
}

export const UpstreamDnsFailed = define('RELAY_UPSTREAM_DNS', 502, 'The upstream server name could not be resolved')
export const UpstreamConnectTimeout = define('RELAY_UPSTREAM_CONNECT_TIMEOUT', 504, 'The upstream server did not accept the connection in time')
export const UpstreamRefused = define('RELAY_UPSTREAM_REFUSED', 502, 'The upstream server refused the connection')
export const UpstreamTlsFailed = define('RELAY_UPSTREAM_TLS', 502, 'A secure connection to the upstream server could not be established')
export const UpstreamTimeout = define('RELAY_UPSTREAM_TIMEOUT', 504, 'The upstream server did not respond in time')
export const UpstreamHeadersTooLarge = define('RELAY_UPSTREAM_HEADERS_TOO_LARGE', 502, 'The upstream server sent response headers over the size limit')
export const UpstreamInvalid = define('RELAY_UPSTREAM_INVALID', 502, 'The upstream server sent an invalid response')
export const UpstreamClosed = define('RELAY_UPSTREAM_CLOSED', 502, 'The upstream server closed the connection unexpectedly')

export interface UpstreamFailure {
  reason: UpstreamErrorReason
  statusCode: 502 | 504
  message: string
  /** The most specific error code found, for the log line */
  code: string | undefined
  /** The answer for the client */
  error: RelayError
}

const DNS = new Set(['ENOTFOUND', 'EAI_AGAIN', 'EAI_NODATA', 'EAI_NONAME', 'EAI_FAIL'])
const CONNECT = new Set(['ECONNREFUSED', 'EHOSTUNREACH', 'ENETUNREACH', 'EHOSTDOWN', 'ENETDOWN', 'EADDRNOTAVAIL'])
// undici's and reply-from's codes are still recognised: reply-from wraps what it hands on.
const CONNECT_TIMEOUTS = new Set(['UND_ERR_CONNECT_TIMEOUT', 'ETIMEDOUT', CONNECT_TIMEOUT])
const RESPONSE_TIMEOUT = new Set(['UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT', 'FST_REPLY_FROM_GATEWAY_TIMEOUT', HEADERS_TIMEOUT, BODY_TIMEOUT])
const ABORTED = new Set(['UND_ERR_ABORTED', 'ABORT_ERR'])
const INVALID = new Set(['FST_REPLY_FROM_BAD_GATEWAY', 'UND_ERR_RES_CONTENT_LENGTH_MISMATCH', 'UND_ERR_INVALID_ARG', INVALID_RESPONSE])
const OVERFLOW = new Set(['UND_ERR_HEADERS_OVERFLOW', HEADERS_OVERFLOW])
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
    // undici's answer to a response it cannot parse (an unasked 101, a broken status line).
    if (code === 'UND_ERR_SOCKET' && /^bad (response|upgrade)$/.test(String((e as { message?: unknown }).message))) codes.push('HPE_INVALID')
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
  const failure = (reason: UpstreamErrorReason, Error: FastifyErrorConstructor): UpstreamFailure => {
    const error = new Error() as RelayError
    return { reason, statusCode: error.statusCode as 502 | 504, message: error.message, code, error }
  }
  if (has(DNS)) return failure('dns', UpstreamDnsFailed)
  if (has(CONNECT_TIMEOUTS)) return failure('connect', UpstreamConnectTimeout)
  if (has(CONNECT)) return failure('connect', UpstreamRefused)
  if (codes.some((c) => TLS.test(c))) return failure('connect', UpstreamTlsFailed)
  if (has(RESPONSE_TIMEOUT)) return failure('timeout', UpstreamTimeout)
  if (has(OVERFLOW)) return failure('reset', UpstreamHeadersTooLarge)
  if (codes.some((c) => c.startsWith('HPE_')) || has(INVALID)) return failure('reset', UpstreamInvalid)
  return failure('reset', UpstreamClosed)
}
