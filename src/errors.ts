// Every answer the relay makes up itself, as a named error with a code: the one error handler
// (app.ts) turns them into the body every client sees, `{statusCode, error, message}`, and the tests
// match on the codes. Messages are written for the public: they never name the upstream.
import { STATUS_CODES } from 'node:http'
import createError, { type FastifyErrorConstructor } from '@fastify/error'

/** The shape of every error body, also of the answers written to a bare socket. */
export interface ErrorBody {
  statusCode: number
  error: string
  message: string
}

export function errorBody (statusCode: number, message: string): ErrorBody {
  return { statusCode, error: STATUS_CODES[statusCode] ?? 'Error', message }
}

/** Headers a relay error asks the error handler to send with it. */
export type ErrorHeaders = Record<string, string | number>

export interface RelayError extends Error {
  code: string
  statusCode: number
  /** Sent with the answer (Allow, Retry-After, Connection: close, rate-limit headers) */
  headers?: ErrorHeaders
}

// Stack traces are never shown and rejections can come by the thousand under attack: skip them.
function define (code: string, statusCode: number, message: string): FastifyErrorConstructor {
  return createError(code, message, statusCode, Error, false)
}

// The client's request
export const BadTarget = define('RELAY_BAD_TARGET', 400, 'Unsupported request target')
export const DuplicateHost = define('RELAY_DUPLICATE_HOST', 400, 'More than one Host header')
export const MissingHost = define('RELAY_MISSING_HOST', 400, 'An HTTP/1.1 request needs a Host header')
export const BadFraming = define('RELAY_BAD_FRAMING', 400, 'The request body\'s length cannot be determined')
export const BadRequest = define('RELAY_BAD_REQUEST', 400, 'The request could not be parsed')
export const RequestTimeout = define('RELAY_REQUEST_TIMEOUT', 408, 'The request was not received in time')
export const BodyTooLarge = define('RELAY_BODY_TOO_LARGE', 413, 'The request body exceeds the limit of %s bytes')
export const ExpectationFailed = define('RELAY_EXPECTATION_FAILED', 417, 'Only "Expect: 100-continue" is supported')
export const TooManyHeaders = define('RELAY_TOO_MANY_HEADERS', 431, 'The request has more than %s header fields')
export const HeadersTooLarge = define('RELAY_HEADERS_TOO_LARGE', 431, 'The request headers are too large')
export const MethodNotAllowed = define('RELAY_METHOD_NOT_ALLOWED', 405, '%s is not supported')
export const UnsupportedTransferCoding = define('RELAY_UNSUPPORTED_TRANSFER_CODING', 501, 'Only the chunked transfer coding is supported')

// The relay itself
export const ShuttingDown = define('RELAY_SHUTTING_DOWN', 503, 'The relay is restarting; try again')
export const MetricsUnauthorized = define('RELAY_METRICS_UNAUTHORIZED', 401, 'A valid bearer token is required')
export const MetricsUnavailable = define('RELAY_METRICS_UNAVAILABLE', 503, 'Metrics are temporarily unavailable')

/** Attaches the headers the answer must carry. */
export function withHeaders<T extends Error> (error: T, headers: ErrorHeaders): T & { headers: ErrorHeaders } {
  return Object.assign(error, { headers })
}

/** True for the errors defined here, whose message is meant for the client, also for a 5xx. */
export function isRelayError (error: unknown): error is RelayError {
  const code = (error as { code?: unknown } | null)?.code
  return typeof code === 'string' && code.startsWith('RELAY_')
}
