// RELAY_LOG_LEVEL accepts pino's level names and the Python names operators know from Gunicorn.

export type LogLevel = 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal' | 'silent'

const ALIASES: Record<string, LogLevel> = {
  trace: 'trace',
  debug: 'debug',
  info: 'info',
  warn: 'warn',
  warning: 'warn',
  error: 'error',
  fatal: 'fatal',
  critical: 'fatal',
  silent: 'silent'
}

/** The accepted names, for error messages and documentation. */
export const LOG_LEVEL_NAMES = Object.keys(ALIASES).map((name) => name.toUpperCase())

/** Maps a case-insensitive level name to pino's, or undefined when it is not one. */
export function normaliseLogLevel (value: string): LogLevel | undefined {
  return Object.hasOwn(ALIASES, value.toLowerCase()) ? ALIASES[value.toLowerCase()] : undefined
}
