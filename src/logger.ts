// One JSON object per line on stdout: level as a word, an ISO timestamp, the message under `msg`.
import { pino, type DestinationStream, type Logger, type LoggerOptions } from 'pino'
import type { LogLevel } from './lib/log-level.js'

/** Where secrets could sit in a logged object. Nothing the relay logs carries headers; this is the backstop. */
const REDACTED_PATHS = [
  'req.headers.authorization',
  'req.headers.cookie',
  'req.headers["proxy-authorization"]',
  'res.headers["set-cookie"]',
  'headers.authorization',
  'headers.cookie',
  'headers["set-cookie"]',
  'headers["proxy-authorization"]',
  'err.headers',
  'err.data',
  'config.metricsToken',
  'config.redisUrl'
]

/**
 * pino's isoTime, formatted once per millisecond: a busy relay writes several lines in each, and
 * `toISOString` was one of the larger costs of a request's log line.
 */
function isoTimeOncePerMillisecond (): () => string {
  let at = -1
  let field = ''
  return () => {
    const now = Date.now()
    if (now !== at) {
      at = now
      field = `,"time":"${new Date(now).toISOString()}"`
    }
    return field
  }
}

export function loggerOptions (level: LogLevel): LoggerOptions {
  return {
    level,
    messageKey: 'msg',
    timestamp: isoTimeOncePerMillisecond(),
    formatters: {
      level: (label) => ({ level: label })
    },
    redact: { paths: REDACTED_PATHS, censor: '[redacted]' }
  }
}

/**
 * Writes to stdout asynchronously: lines written while a write is in flight go out together, so a
 * busy relay makes one write call for many requests. Whatever is pending is flushed when the process
 * exits, also through process.exit().
 */
export function createLogger (level: LogLevel, destination?: DestinationStream): Logger {
  return pino(loggerOptions(level), destination ?? pino.destination({ dest: 1, sync: false }))
}
