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

// Overload protection: one GPU behind a public door. Each carries the reason it is counted under
// (relay_rejected_requests_total) and a Retry-After.
export const REJECTION_REASONS = ['queue_full', 'queue_timeout', 'client_concurrency', 'rate_limit', 'overloaded'] as const
export type RejectionReason = typeof REJECTION_REASONS[number]
export const QueueFull = define('RELAY_QUEUE_FULL', 503, 'The GPU is busy and its queue is full; try again later')
export const QueueTimeout = define('RELAY_QUEUE_TIMEOUT', 503, 'The GPU stayed busy for too long; try again later')
export const ClientConcurrency = define('RELAY_CLIENT_CONCURRENCY', 429, 'Too many of your requests are in progress; wait for one to finish')
export const RateLimited = define('RELAY_RATE_LIMITED', 429, 'Too many requests; try again in %s seconds')
export const Overloaded = define('RELAY_OVERLOADED', 503, 'The relay is overloaded; try again shortly')

const REJECTIONS: Record<RejectionReason, FastifyErrorConstructor> = {
  queue_full: QueueFull,
  queue_timeout: QueueTimeout,
  client_concurrency: ClientConcurrency,
  rate_limit: RateLimited,
  overloaded: Overloaded
}

export interface Rejection extends RelayError {
  reason: RejectionReason
}

/** The answer to a request refused for `reason`, telling the client when to try again. */
export function rejection (reason: RejectionReason, retryAfterSeconds: number, headers: ErrorHeaders = {}): Rejection {
  // Only the rate limit's message says when (it knows: the window's reset); the others' would get the
  // number appended.
  const error = (reason === 'rate_limit' ? new RateLimited(retryAfterSeconds) : new REJECTIONS[reason]()) as Rejection
  error.reason = reason
  error.headers = { ...headers, 'retry-after': retryAfterSeconds }
  return error
}

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
