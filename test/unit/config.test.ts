import { test } from 'node:test'
import assert from 'node:assert/strict'
import { ConfigError, VARIABLE_NAMES, configSchema, loadConfig, parseUpstreamUrl } from '../../src/config.js'

test('defaults match the documented table', () => {
  const config = loadConfig({}, { defaultVersion: '1.2.3' })
  assert.equal(config.port, 5010)
  assert.equal(config.host, '0.0.0.0')
  assert.equal(config.workers, 2)
  assert.equal(config.logLevel, 'info')
  assert.equal(config.upstream.url, 'http://gpu-server:5010')
  assert.equal(config.upstream.origin, 'http://gpu-server:5010')
  assert.equal(config.upstream.hostname, 'gpu-server')
  assert.equal(config.upstreamTimeoutMs, 300_000)
  assert.equal(config.bodyLimitBytes, 10_485_760)
  assert.equal(config.shutdownDelayMs, 5_000)
  assert.equal(config.shutdownTimeoutMs, 20_000)
  assert.equal(config.headersTimeoutMs, 10_000)
  assert.equal(config.requestTimeoutMs, 120_000)
  assert.equal(config.keepAliveTimeoutMs, 95_000)
  assert.equal(config.metricsToken, undefined)
  assert.equal(config.metricsMaxEndpoints, 100)
  assert.equal(config.trustProxy, undefined)
  assert.deepEqual(config.build, { version: '1.2.3', revision: 'unknown' })
})

test('every variable is typed and parsed', () => {
  const config = loadConfig({
    RELAY_PORT: '8080',
    RELAY_HOST: '::',
    RELAY_WORKERS: '4',
    RELAY_LOG_LEVEL: 'warning',
    UPSTREAM_URL: 'https://gpu.example.com:8443/base/',
    RELAY_UPSTREAM_TIMEOUT_SECONDS: '0.5',
    RELAY_BODY_LIMIT_BYTES: '1024',
    RELAY_SHUTDOWN_DELAY_SECONDS: '0',
    RELAY_SHUTDOWN_TIMEOUT_SECONDS: '2.5',
    RELAY_METRICS_TOKEN: 's3cr3t-token',
    RELAY_METRICS_MAX_ENDPOINTS: '7',
    RELAY_TRUST_PROXY: '10.42.0.0/16, loopback,fd00::1',
    RELAY_BUILD_VERSION: '2.0.0-rc.1',
    RELAY_BUILD_REVISION: 'abc1234'
  })
  assert.equal(config.port, 8080)
  assert.equal(config.host, '::')
  assert.equal(config.workers, 4)
  assert.equal(config.logLevel, 'warn')
  assert.deepEqual(config.upstream, { url: 'https://gpu.example.com:8443/base', origin: 'https://gpu.example.com:8443', hostname: 'gpu.example.com', protocol: 'https:' })
  assert.equal(config.upstreamTimeoutMs, 500)
  assert.equal(config.bodyLimitBytes, 1024)
  assert.equal(config.shutdownDelayMs, 0)
  assert.equal(config.shutdownTimeoutMs, 2500)
  assert.equal(config.metricsToken, 's3cr3t-token')
  assert.equal(config.metricsMaxEndpoints, 7)
  assert.deepEqual(config.trustProxy, ['10.42.0.0/16', 'loopback', 'fd00::1'])
  assert.deepEqual(config.build, { version: '2.0.0-rc.1', revision: 'abc1234' })
})

test('log levels: pino names and Python names, any case', () => {
  const cases = { TRACE: 'trace', debug: 'debug', Info: 'info', WARN: 'warn', WARNING: 'warn', error: 'error', CRITICAL: 'fatal', fatal: 'fatal', silent: 'silent' }
  for (const [given, expected] of Object.entries(cases)) {
    assert.equal(loadConfig({ RELAY_LOG_LEVEL: given }).logLevel, expected, given)
  }
})

test('an IPv6 upstream keeps its brackets in the origin, not in the host name', () => {
  const upstream = parseUpstreamUrl('http://[::1]:5010')
  assert.equal(upstream?.origin, 'http://[::1]:5010')
  assert.equal(upstream?.hostname, '::1')
})

const invalid: Array<[string, string, RegExp]> = [
  ['RELAY_PORT', 'abc', /RELAY_PORT="abc": expected an integer from 0 to 65535/],
  ['RELAY_PORT', '70000', /RELAY_PORT="70000": expected an integer from 0 to 65535/],
  ['RELAY_PORT', '-1', /RELAY_PORT="-1"/],
  ['RELAY_PORT', '0x10', /RELAY_PORT="0x10"/],
  ['RELAY_PORT', ' 5010', /RELAY_PORT=" 5010"/],
  ['RELAY_PORT', '', /RELAY_PORT="" \(empty\): expected an integer/],
  ['RELAY_WORKERS', '0', /RELAY_WORKERS="0": expected an integer from 1 to 64/],
  ['RELAY_WORKERS', '1.5', /RELAY_WORKERS="1.5"/],
  ['RELAY_LOG_LEVEL', 'verbose', /RELAY_LOG_LEVEL="verbose": expected one of TRACE, DEBUG, INFO, WARN, WARNING, ERROR, FATAL, CRITICAL, SILENT/],
  ['RELAY_LOG_LEVEL', '   ', /RELAY_LOG_LEVEL=" {3}" \(empty\)/],
  ['UPSTREAM_URL', 'ftp://x', /UPSTREAM_URL="ftp:\/\/x": expected an http:\/\/ or https:\/\/ URL/],
  ['UPSTREAM_URL', 'not a url', /UPSTREAM_URL="not a url"/],
  ['UPSTREAM_URL', 'gpu-server:5010', /UPSTREAM_URL=/],
  ['UPSTREAM_URL', 'http://user:pw@gpu:5010', /UPSTREAM_URL=/],
  ['UPSTREAM_URL', 'http://gpu:5010/?q=1', /UPSTREAM_URL=/],
  ['UPSTREAM_URL', 'http:\\\\gpu\\x', /UPSTREAM_URL=/],
  ['UPSTREAM_URL', 'http://gpu_server!:5010', /UPSTREAM_URL=/],
  ['UPSTREAM_URL', '', /UPSTREAM_URL="" \(empty\)/],
  ['RELAY_HOST', 'not a host', /RELAY_HOST="not a host": expected an IP address or a host name/],
  ['RELAY_UPSTREAM_TIMEOUT_SECONDS', '0', /RELAY_UPSTREAM_TIMEOUT_SECONDS="0": expected a number of seconds greater than 0/],
  ['RELAY_UPSTREAM_TIMEOUT_SECONDS', '-1', /RELAY_UPSTREAM_TIMEOUT_SECONDS="-1"/],
  ['RELAY_UPSTREAM_TIMEOUT_SECONDS', '1e3', /RELAY_UPSTREAM_TIMEOUT_SECONDS="1e3"/],
  ['RELAY_BODY_LIMIT_BYTES', '10MB', /RELAY_BODY_LIMIT_BYTES="10MB": expected a non-negative integer number of bytes/],
  ['RELAY_SHUTDOWN_DELAY_SECONDS', '3601', /RELAY_SHUTDOWN_DELAY_SECONDS="3601": expected a number of seconds from 0 to 3600/],
  ['RELAY_SHUTDOWN_TIMEOUT_SECONDS', 'soon', /RELAY_SHUTDOWN_TIMEOUT_SECONDS="soon"/],
  ['RELAY_METRICS_MAX_ENDPOINTS', '-5', /RELAY_METRICS_MAX_ENDPOINTS="-5"/],
  ['RELAY_TRUST_PROXY', '0.0.0.0/0', /RELAY_TRUST_PROXY="0.0.0.0\/0": expected a comma-separated list/],
  ['RELAY_TRUST_PROXY', '10.0.0.0/33', /RELAY_TRUST_PROXY=/],
  ['RELAY_TRUST_PROXY', 'traefik', /RELAY_TRUST_PROXY=/],
  ['RELAY_BUILD_REVISION', 'a b', /RELAY_BUILD_REVISION="a b"/]
]

for (const [name, value, message] of invalid) {
  test(`refuses ${name}=${JSON.stringify(value)} with one line naming it`, () => {
    assert.throws(() => loadConfig({ [name]: value }), (err: unknown) => {
      assert.ok(err instanceof ConfigError)
      assert.equal(err.variable, name)
      assert.match(err.message, message)
      assert.doesNotMatch(err.message, /\n/)
      return true
    })
  })
}

test('a bad metrics token is named but never echoed', () => {
  assert.throws(() => loadConfig({ RELAY_METRICS_TOKEN: 'has space inside' }), (err: unknown) => {
    assert.ok(err instanceof ConfigError)
    assert.match(err.message, /^invalid configuration: RELAY_METRICS_TOKEN=\(a secret of 16 characters, not shown\): expected a token/)
    assert.doesNotMatch(err.message, /space inside/)
    return true
  })
  assert.throws(() => loadConfig({ RELAY_METRICS_TOKEN: '' }), /RELAY_METRICS_TOKEN="" \(empty\)/)
})

test('the headers timeout cannot exceed the whole-request timeout', () => {
  assert.throws(() => loadConfig({ RELAY_HEADERS_TIMEOUT_SECONDS: '30', RELAY_REQUEST_TIMEOUT_SECONDS: '20' }),
    /RELAY_HEADERS_TIMEOUT_SECONDS="30": expected a number of seconds no larger than RELAY_REQUEST_TIMEOUT_SECONDS \(20\)/)
  assert.throws(() => loadConfig({ RELAY_REQUEST_TIMEOUT_SECONDS: '5' }), /RELAY_HEADERS_TIMEOUT_SECONDS="10"/)
  const config = loadConfig({ RELAY_HEADERS_TIMEOUT_SECONDS: '2', RELAY_REQUEST_TIMEOUT_SECONDS: '2', RELAY_KEEPALIVE_TIMEOUT_SECONDS: '0.5' })
  assert.deepEqual([config.headersTimeoutMs, config.requestTimeoutMs, config.keepAliveTimeoutMs], [2000, 2000, 500])
})

test('the exported schema lists exactly the variables read', () => {
  assert.deepEqual(Object.keys(configSchema.properties), VARIABLE_NAMES)
  for (const name of VARIABLE_NAMES) assert.match(name, /^(RELAY_|UPSTREAM_URL$)/)
})

test('values are not silently defaulted when another variable is wrong', () => {
  // The first invalid variable in table order is reported; nothing is half-loaded.
  assert.throws(() => loadConfig({ RELAY_PORT: '5010', RELAY_WORKERS: 'two' }), /RELAY_WORKERS="two"/)
})
