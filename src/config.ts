// The relay's configuration: every environment variable it reads, validated once at start-up.
// Pure: no I/O, no process.exit. server.ts decides what to do with a ConfigError.
import { isIP } from 'node:net'
import envSchema from 'env-schema'
import { normaliseLogLevel, LOG_LEVEL_NAMES, type LogLevel } from './lib/log-level.js'

/** What one variable accepts, in words the operator reads in the error line. */
interface Variable {
  schema: Record<string, unknown> & { type: 'string' | 'integer' | 'number' }
  expected: string
  /** Never echo the value back (it is a secret). */
  secret?: boolean
}

/**
 * The variables and what each accepts. The JSON schema handed to env-schema is built from this table,
 * and the Helm chart's tests read it to check that the chart only sets variables the relay knows.
 */
export const VARIABLES = {
  RELAY_PORT: {
    schema: { type: 'integer', minimum: 0, maximum: 65535, default: 5010 },
    expected: 'an integer from 0 to 65535 (0 picks any free port)'
  },
  RELAY_HOST: {
    schema: { type: 'string', default: '0.0.0.0', maxLength: 253 },
    expected: 'an IP address or a host name to listen on, e.g. 0.0.0.0 or ::'
  },
  RELAY_WORKERS: {
    schema: { type: 'integer', minimum: 1, maximum: 64, default: 2 },
    expected: 'an integer from 1 to 64 (1 = a single process, no cluster)'
  },
  RELAY_LOG_LEVEL: {
    schema: { type: 'string', default: 'INFO' },
    expected: `one of ${LOG_LEVEL_NAMES.join(', ')} (case-insensitive)`
  },
  UPSTREAM_URL: {
    schema: { type: 'string', default: 'http://gpu-server:5010', maxLength: 2048 },
    expected: 'an http:// or https:// URL with a host and an optional path, without credentials, query or fragment'
  },
  RELAY_UPSTREAM_TIMEOUT_SECONDS: {
    schema: { type: 'number', exclusiveMinimum: 0, maximum: 86400, default: 300 },
    expected: 'a number of seconds greater than 0 and at most 86400'
  },
  RELAY_BODY_LIMIT_BYTES: {
    schema: { type: 'integer', minimum: 0, maximum: Number.MAX_SAFE_INTEGER, default: 10485760 },
    expected: 'a non-negative integer number of bytes'
  },
  RELAY_SHUTDOWN_DELAY_SECONDS: {
    schema: { type: 'number', minimum: 0, maximum: 3600, default: 5 },
    expected: 'a number of seconds from 0 to 3600'
  },
  RELAY_SHUTDOWN_TIMEOUT_SECONDS: {
    schema: { type: 'number', minimum: 0, maximum: 3600, default: 20 },
    expected: 'a number of seconds from 0 to 3600'
  },
  RELAY_HEADERS_TIMEOUT_SECONDS: {
    schema: { type: 'number', exclusiveMinimum: 0, maximum: 3600, default: 10 },
    expected: 'a number of seconds greater than 0 and at most 3600'
  },
  RELAY_REQUEST_TIMEOUT_SECONDS: {
    schema: { type: 'number', exclusiveMinimum: 0, maximum: 86400, default: 120 },
    expected: 'a number of seconds greater than 0 and at most 86400'
  },
  RELAY_KEEPALIVE_TIMEOUT_SECONDS: {
    schema: { type: 'number', exclusiveMinimum: 0, maximum: 3600, default: 95 },
    expected: 'a number of seconds greater than 0 and at most 3600'
  },
  RELAY_SEND_TIMEOUT_SECONDS: {
    schema: { type: 'number', minimum: 0, maximum: 86400, default: 60 },
    expected: 'a number of seconds from 0 to 86400 (0 turns the check off)'
  },
  RELAY_METRICS_TOKEN: {
    schema: { type: 'string', pattern: '^[\\x21-\\x7e]{1,4096}$' },
    expected: 'a token of printable ASCII characters without spaces (unset it to leave /metrics open)',
    secret: true
  },
  RELAY_METRICS_MAX_ENDPOINTS: {
    schema: { type: 'integer', minimum: 0, maximum: 100000, default: 100 },
    expected: 'an integer from 0 to 100000'
  },
  RELAY_TRUST_PROXY: {
    schema: { type: 'string', maxLength: 4096 },
    expected: 'a comma-separated list of IP addresses or CIDR ranges (or loopback, linklocal, uniquelocal) of proxies in front of the relay'
  },
  RELAY_MAX_CONCURRENT: {
    schema: { type: 'integer', minimum: 0, maximum: 1000000, default: 0 },
    expected: 'an integer from 0 to 1000000 (0 = no cap)'
  },
  RELAY_QUEUE_LIMIT: {
    schema: { type: 'integer', minimum: 0, maximum: 1000000, default: 100 },
    expected: 'an integer from 0 to 1000000'
  },
  RELAY_QUEUE_TIMEOUT_SECONDS: {
    schema: { type: 'number', exclusiveMinimum: 0, maximum: 86400, default: 30 },
    expected: 'a number of seconds greater than 0 and at most 86400'
  },
  RELAY_MAX_CONCURRENT_PER_CLIENT: {
    schema: { type: 'integer', minimum: 0, maximum: 1000000, default: 0 },
    expected: 'an integer from 0 to 1000000 (0 = no limit)'
  },
  RELAY_RATE_LIMIT: {
    schema: { type: 'integer', minimum: 0, maximum: 1000000000, default: 0 },
    expected: 'an integer from 0 to 1000000000 (0 = no limit)'
  },
  RELAY_RATE_LIMIT_WINDOW_SECONDS: {
    schema: { type: 'number', exclusiveMinimum: 0, maximum: 86400, default: 60 },
    expected: 'a number of seconds greater than 0 and at most 86400'
  },
  RELAY_MAX_EVENT_LOOP_DELAY_MS: {
    schema: { type: 'integer', minimum: 0, maximum: 60000, default: 0 },
    expected: 'an integer number of milliseconds from 0 to 60000 (0 = no check)'
  },
  RELAY_REDIS_URL: {
    schema: { type: 'string', maxLength: 4096 },
    expected: 'a redis:// or rediss:// URL with a host (unset it to count rate limits in the relay itself)',
    secret: true
  },
  RELAY_BUILD_VERSION: {
    schema: { type: 'string', pattern: '^[0-9A-Za-z][0-9A-Za-z.+_-]{0,127}$' },
    expected: 'a version string such as 1.2.3 or 1.2.3-rc.1'
  },
  RELAY_BUILD_REVISION: {
    schema: { type: 'string', pattern: '^[0-9A-Za-z._-]{1,128}$' },
    expected: 'a source revision such as a git commit hash'
  }
} satisfies Record<string, Variable>

export type VariableName = keyof typeof VARIABLES

/** The environment variables the relay reads, in table order. */
export const VARIABLE_NAMES = Object.keys(VARIABLES) as VariableName[]

/** The JSON schema env-schema validates against (also read by the chart tests). */
export const configSchema = {
  type: 'object',
  properties: Object.fromEntries(VARIABLE_NAMES.map((name) => [name, { ...VARIABLES[name].schema }]))
} as const

export interface UpstreamConfig {
  /** The URL as configured, e.g. http://gpu-server:5010/base */
  url: string
  /** scheme://host:port, what the connection pool dials */
  origin: string
  /** Host name or IP without brackets, for the DNS readiness check */
  hostname: string
  protocol: 'http:' | 'https:'
}

export interface RelayConfig {
  port: number
  host: string
  workers: number
  logLevel: LogLevel
  upstream: UpstreamConfig
  upstreamTimeoutMs: number
  bodyLimitBytes: number
  shutdownDelayMs: number
  shutdownTimeoutMs: number
  /** Longest a client may take to send the request line and headers */
  headersTimeoutMs: number
  /** Longest a client may take to send a whole request, body included */
  requestTimeoutMs: number
  /** How long an idle client connection stays open */
  keepAliveTimeoutMs: number
  /** Longest a response may wait for a client that does not read it (0: no limit) */
  sendTimeoutMs: number
  metricsToken: string | undefined
  metricsMaxEndpoints: number
  trustProxy: string[] | undefined
  limits: LimitsConfig
  /** Where the rate-limit counters shared by every process and replica live; a secret */
  redisUrl: string | undefined
  build: { version: string, revision: string }
}

/** Overload protection; every limit of 0 is off. */
export interface LimitsConfig {
  /** Most proxied requests at the upstream at once, for the whole pod */
  maxConcurrent: number
  /** Most requests waiting for a slot */
  queueLimit: number
  queueTimeoutMs: number
  /** Most requests one client may have in flight or waiting */
  maxConcurrentPerClient: number
  /** Requests one client may start per window */
  rateLimit: number
  rateLimitWindowMs: number
  /** Past this event-loop delay, new proxied requests get 503 */
  maxEventLoopDelayMs: number
}

/** One line that names the variable, the value it got and what it expects. */
export class ConfigError extends Error {
  readonly variable: string

  constructor (variable: string, value: string | undefined, expected: string, secret = false) {
    super(`invalid configuration: ${variable}=${describeValue(value, secret)}: expected ${expected}`)
    this.name = 'ConfigError'
    this.variable = variable
  }
}

function describeValue (value: string | undefined, secret: boolean): string {
  if (value === undefined) return '(unset)'
  if (value.trim() === '') return `${JSON.stringify(value)} (empty)`
  if (secret) return `(a secret of ${value.length} characters, not shown)`
  return JSON.stringify(value.length > 200 ? value.slice(0, 200) + '…' : value)
}

const DECIMAL_INTEGER = /^[0-9]+$/
const DECIMAL_NUMBER = /^[0-9]+(\.[0-9]+)?$/

export interface LoadConfigOptions {
  /** Version reported when RELAY_BUILD_VERSION is unset (the package version). */
  defaultVersion?: string
}

/**
 * Validates an environment (process.env in production, a plain object in tests) and returns the
 * typed configuration. Throws ConfigError for the first invalid variable; never falls back silently.
 */
export function loadConfig (env: NodeJS.ProcessEnv, options: LoadConfigOptions = {}): RelayConfig {
  const data: Record<string, string> = {}
  for (const name of VARIABLE_NAMES) {
    const raw = env[name]
    if (raw === undefined) continue
    const variable: Variable = VARIABLES[name]
    // Ajv would coerce '' to 0 and ' 0x1F ' to 31; an operator who typed those meant something else.
    const { type } = variable.schema
    if (raw.trim() === '' ||
        (type === 'integer' && !DECIMAL_INTEGER.test(raw)) ||
        (type === 'number' && !DECIMAL_NUMBER.test(raw))) {
      throw new ConfigError(name, raw, variable.expected, variable.secret)
    }
    data[name] = raw
  }

  let parsed: Record<VariableName, unknown>
  try {
    parsed = envSchema({ schema: structuredClone(configSchema), data, env: false, dotenv: false })
  } catch (err) {
    throw toConfigError(err, env)
  }
  return toRelayConfig(parsed, env, options)
}

function toConfigError (err: unknown, env: NodeJS.ProcessEnv): Error {
  const first = (err as { errors?: Array<{ instancePath: string }> }).errors?.[0]
  const name = first?.instancePath.replace(/^\//, '') as VariableName | undefined
  if (name === undefined || !(name in VARIABLES)) return err as Error
  const variable: Variable = VARIABLES[name]
  return new ConfigError(name, env[name], variable.expected, variable.secret)
}

function toRelayConfig (v: Record<VariableName, unknown>, env: NodeJS.ProcessEnv, options: LoadConfigOptions): RelayConfig {
  const fail = (name: VariableName): never => {
    const variable: Variable = VARIABLES[name]
    throw new ConfigError(name, env[name], variable.expected, variable.secret)
  }

  const host = v.RELAY_HOST as string
  if (isIP(host) === 0 && !isHostName(host)) fail('RELAY_HOST')

  const logLevel = normaliseLogLevel(v.RELAY_LOG_LEVEL as string) ?? fail('RELAY_LOG_LEVEL')
  const upstream = parseUpstreamUrl(v.UPSTREAM_URL as string) ?? fail('UPSTREAM_URL')

  // Node refuses a headers timeout longer than the whole-request timeout.
  if ((v.RELAY_HEADERS_TIMEOUT_SECONDS as number) > (v.RELAY_REQUEST_TIMEOUT_SECONDS as number)) {
    throw new ConfigError('RELAY_HEADERS_TIMEOUT_SECONDS', env.RELAY_HEADERS_TIMEOUT_SECONDS ?? String(v.RELAY_HEADERS_TIMEOUT_SECONDS),
      `a number of seconds no larger than RELAY_REQUEST_TIMEOUT_SECONDS (${String(v.RELAY_REQUEST_TIMEOUT_SECONDS)})`)
  }

  let trustProxy: string[] | undefined
  if (v.RELAY_TRUST_PROXY !== undefined) {
    trustProxy = (v.RELAY_TRUST_PROXY as string).split(',').map((s) => s.trim())
    if (!trustProxy.every(isTrustedProxyEntry)) fail('RELAY_TRUST_PROXY')
  }

  const redisUrl = v.RELAY_REDIS_URL as string | undefined
  if (redisUrl !== undefined && !isRedisUrl(redisUrl)) fail('RELAY_REDIS_URL')

  return {
    port: v.RELAY_PORT as number,
    host,
    workers: v.RELAY_WORKERS as number,
    logLevel,
    upstream,
    upstreamTimeoutMs: Math.round((v.RELAY_UPSTREAM_TIMEOUT_SECONDS as number) * 1000),
    bodyLimitBytes: v.RELAY_BODY_LIMIT_BYTES as number,
    shutdownDelayMs: Math.round((v.RELAY_SHUTDOWN_DELAY_SECONDS as number) * 1000),
    shutdownTimeoutMs: Math.round((v.RELAY_SHUTDOWN_TIMEOUT_SECONDS as number) * 1000),
    headersTimeoutMs: Math.round((v.RELAY_HEADERS_TIMEOUT_SECONDS as number) * 1000),
    requestTimeoutMs: Math.round((v.RELAY_REQUEST_TIMEOUT_SECONDS as number) * 1000),
    keepAliveTimeoutMs: Math.round((v.RELAY_KEEPALIVE_TIMEOUT_SECONDS as number) * 1000),
    sendTimeoutMs: Math.round((v.RELAY_SEND_TIMEOUT_SECONDS as number) * 1000),
    metricsToken: v.RELAY_METRICS_TOKEN as string | undefined,
    metricsMaxEndpoints: v.RELAY_METRICS_MAX_ENDPOINTS as number,
    trustProxy,
    limits: {
      maxConcurrent: v.RELAY_MAX_CONCURRENT as number,
      queueLimit: v.RELAY_QUEUE_LIMIT as number,
      queueTimeoutMs: Math.round((v.RELAY_QUEUE_TIMEOUT_SECONDS as number) * 1000),
      maxConcurrentPerClient: v.RELAY_MAX_CONCURRENT_PER_CLIENT as number,
      rateLimit: v.RELAY_RATE_LIMIT as number,
      rateLimitWindowMs: Math.round((v.RELAY_RATE_LIMIT_WINDOW_SECONDS as number) * 1000),
      maxEventLoopDelayMs: v.RELAY_MAX_EVENT_LOOP_DELAY_MS as number
    },
    redisUrl,
    build: {
      version: (v.RELAY_BUILD_VERSION as string | undefined) ?? options.defaultVersion ?? '0.0.0',
      revision: (v.RELAY_BUILD_REVISION as string | undefined) ?? 'unknown'
    }
  }
}

const HOST_NAME = /^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?$/

function isHostName (value: string): boolean {
  return HOST_NAME.test(value)
}

/** Returns the parsed upstream, or undefined when the URL is not one the relay can dial safely. */
export function parseUpstreamUrl (value: string): UpstreamConfig | undefined {
  let url: URL
  try {
    url = new URL(value)
  } catch {
    return undefined
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return undefined
  if (url.username !== '' || url.password !== '' || url.search !== '' || url.hash !== '') return undefined
  // Reject what the WHATWG parser silently repairs (backslashes, whitespace, a missing "//").
  if (!/^https?:\/\/[^/\\?#\s]+(\/[^\\?#\s]*)?$/i.test(value)) return undefined
  const hostname = url.hostname.replace(/^\[(.*)\]$/, '$1')
  if (hostname === '' || (isIP(hostname) === 0 && !isHostName(hostname))) return undefined
  return {
    url: url.href.replace(/\/$/, ''),
    origin: url.origin,
    hostname,
    protocol: url.protocol
  }
}

function isRedisUrl (value: string): boolean {
  let url: URL
  try {
    url = new URL(value)
  } catch {
    return false
  }
  return (url.protocol === 'redis:' || url.protocol === 'rediss:') && url.hostname !== '' && url.search === '' && url.hash === ''
}

const NAMED_RANGES = new Set(['loopback', 'linklocal', 'uniquelocal'])

function isTrustedProxyEntry (entry: string): boolean {
  if (NAMED_RANGES.has(entry)) return true
  const [address, bits, ...rest] = entry.split('/')
  if (address === undefined || rest.length > 0) return false
  const family = isIP(address)
  if (family === 0) return false
  if (bits === undefined) return true
  if (!DECIMAL_INTEGER.test(bits)) return false
  // A /0 range would trust every client's X-Forwarded-For: refuse it rather than make spoofing easy.
  return Number(bits) > 0 && Number(bits) <= (family === 4 ? 32 : 128)
}
