// The env vars the chart sets and the values it accepts must match what the relay's config accepts.
// Both sides are read from their sources (src/config.ts, values.yaml, values.schema.json, the rendered
// Deployment), so neither can drift from the other unnoticed.
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { parse as parseYaml } from 'yaml'
import { VARIABLES, VARIABLE_NAMES, loadConfig, type VariableName } from '../../src/config.js'
import { LOG_LEVEL_NAMES } from '../../src/lib/log-level.js'
import { CHART_DIR, render, renderError, type Rendered } from '../helpers/chart-helm.js'
import { MATRIX } from '../helpers/chart-cases.js'

const SAMPLE_TOKEN = 'sample-metrics-token-0123456789'
/** What a redis.existingSecret holds, as the README's `kubectl create secret` puts it there. */
const SAMPLE_REDIS_URL = 'redis://:sample-password@redis-master.redis:6379'
/** Variables Node.js itself reads, which the chart may set too (upstream.ca sets NODE_EXTRA_CA_CERTS). */
const NODE_OWN_VARIABLES = ['NODE_EXTRA_CA_CERTS']
const values = parseYaml(readFileSync(join(CHART_DIR, 'values.yaml'), 'utf8'))
const schema = JSON.parse(readFileSync(join(CHART_DIR, 'values.schema.json'), 'utf8'))
const relaySchema = schema.properties.relay.properties

/** The env as the relay would see it: literal values, secretKeyRef values replaced by a sample token. */
function relayEnv (r: Rendered): Record<string, string> {
  const env: Record<string, string> = {}
  for (const e of r.container.env as Array<{ name: string, value?: string, valueFrom?: any }>) {
    if (e.value !== undefined) {
      env[e.name] = e.value
    } else {
      assert.ok(e.valueFrom?.secretKeyRef !== undefined, `${e.name} must be a literal or come from a Secret`)
      env[e.name] = e.name === 'RELAY_REDIS_URL' ? SAMPLE_REDIS_URL : SAMPLE_TOKEN
    }
  }
  return env
}

/** Value sets beyond the matrix, exercising every relay.* value with non-default settings. */
const NON_DEFAULT = [
  {
    name: 'every relay value changed',
    values: {
      relay: {
        port: 8080,
        workers: 64,
        logLevel: 'critical',
        upstreamTimeoutSeconds: 0.5,
        bodyLimitBytes: 0,
        shutdownDelaySeconds: 0,
        shutdownTimeoutSeconds: 3600,
        trustProxy: ['loopback', '10.42.0.0/16', '192.168.1.1', 'fd00::/8'],
        metricsToken: { existingSecret: 'relay-metrics', key: 'token' }
      },
      redis: { existingSecret: 'relay-redis', key: 'uri' },
      upstream: { url: 'https://gpu-server:5010/api/v1' },
      extraEnv: [{ name: 'RELAY_METRICS_MAX_ENDPOINTS', value: '0' }, { name: 'RELAY_HOST', value: '::' }]
    }
  },
  {
    name: 'large and fractional numbers',
    values: { relay: { upstreamTimeoutSeconds: 86400, bodyLimitBytes: 9007199254740991, shutdownDelaySeconds: 0.25, shutdownTimeoutSeconds: 1234.5 } }
  },
  {
    name: 'an https upstream with a private CA',
    values: { upstream: { url: 'https://gpu-box.token.place:8443', ca: { existingSecret: 'gpu-ca', key: 'ca.pem' } } }
  },
  // Each accepted level name is checked against loadConfig below; here one in each case goes end to end.
  {
    name: 'every limit changed',
    values: { relay: { limits: { maxConcurrent: 1000000, queueLimit: 0, queueTimeoutSeconds: 0.5, maxConcurrentPerClient: 1000000, rateLimit: 1000000000, rateLimitWindowSeconds: 86400, maxEventLoopDelayMs: 60000 } } }
  },
  {
    name: 'every limit off',
    values: { relay: { limits: { maxConcurrent: 0, queueLimit: 1000000, queueTimeoutSeconds: 86400, maxConcurrentPerClient: 0, rateLimit: 0, rateLimitWindowSeconds: 0.001, maxEventLoopDelayMs: 0 } } }
  },
  { name: 'log level WARNING', values: { relay: { logLevel: 'WARNING' } } },
  { name: 'log level silent', values: { relay: { logLevel: 'silent' } } }
]

describe('env vars: chart vs relay config', { concurrency: true }, () => {
  // The matrix cases that change the env (the others only add or drop objects around the Deployment).
  const envCases = MATRIX.filter((c) => /defaults|metrics token|https upstream|everything/.test(c.name))
  it('covers the matrix cases that change the env', () => {
    assert.equal(envCases.length, 5)
  })

  for (const c of [...envCases, ...NON_DEFAULT]) {
    it(`${c.name}: every env var is one the relay reads, non-empty, and loadConfig accepts them`, async () => {
      const r = await render(c.values, 'options' in c ? c.options : undefined)
      const env = relayEnv(r)
      for (const [name, value] of Object.entries(env)) {
        assert.ok((VARIABLE_NAMES as string[]).includes(name) || NODE_OWN_VARIABLES.includes(name), `the chart sets ${name}, which neither src/config.ts nor Node.js reads`)
        assert.notEqual(value.trim(), '', `${name} is rendered empty; the relay refuses empty values`)
      }
      const config = loadConfig(env)
      assert.equal(config.port, Number(env.RELAY_PORT))
      assert.equal(config.upstream.url, env.UPSTREAM_URL?.replace(/\/$/, ''))
      assert.equal(config.metricsToken, env.RELAY_METRICS_TOKEN === undefined ? undefined : SAMPLE_TOKEN)
    })
  }

  it('every relay value lands in the config the relay loads', async () => {
    const r = await render(NON_DEFAULT[0]?.values ?? {})
    const config = loadConfig(relayEnv(r))
    assert.equal(config.port, 8080)
    assert.equal(config.workers, 64)
    assert.equal(config.logLevel, 'fatal')
    assert.equal(config.upstreamTimeoutMs, 500)
    assert.equal(config.bodyLimitBytes, 0)
    assert.equal(config.shutdownDelayMs, 0)
    assert.equal(config.shutdownTimeoutMs, 3600_000)
    assert.deepEqual(config.trustProxy, ['loopback', '10.42.0.0/16', '192.168.1.1', 'fd00::/8'])
    assert.equal(config.metricsToken, SAMPLE_TOKEN)
    assert.equal(config.metricsMaxEndpoints, 0)
    assert.equal(config.host, '::')
    assert.equal(config.upstream.url, 'https://gpu-server:5010/api/v1')
    assert.equal(config.redisUrl, SAMPLE_REDIS_URL, 'RELAY_REDIS_URL, from the Secret')
  })

  it('relay.limits lands in the config the relay loads, limit by limit', async () => {
    const [changed, off, defaults] = await Promise.all([
      render(NON_DEFAULT.find((c) => c.name === 'every limit changed')?.values ?? {}),
      render(NON_DEFAULT.find((c) => c.name === 'every limit off')?.values ?? {}),
      render({})
    ])
    assert.deepEqual(loadConfig(relayEnv(changed)).limits, {
      maxConcurrent: 1000000, queueLimit: 0, queueTimeoutMs: 500, maxConcurrentPerClient: 1000000, rateLimit: 1000000000, rateLimitWindowMs: 86400_000, maxEventLoopDelayMs: 60000
    })
    assert.deepEqual(loadConfig(relayEnv(off)).limits, {
      maxConcurrent: 0, queueLimit: 1000000, queueTimeoutMs: 86400_000, maxConcurrentPerClient: 0, rateLimit: 0, rateLimitWindowMs: 1, maxEventLoopDelayMs: 0
    })
    const limits = values.relay.limits
    assert.deepEqual(loadConfig(relayEnv(defaults)).limits, {
      maxConcurrent: limits.maxConcurrent,
      queueLimit: limits.queueLimit,
      queueTimeoutMs: limits.queueTimeoutSeconds * 1000,
      maxConcurrentPerClient: limits.maxConcurrentPerClient,
      rateLimit: limits.rateLimit,
      rateLimitWindowMs: limits.rateLimitWindowSeconds * 1000,
      maxEventLoopDelayMs: limits.maxEventLoopDelayMs
    })
  })

  it('the relay leaves every limit off; the chart turns each on, for one GPU behind a public Ingress', () => {
    const OFF_SWITCHES: Array<[string, VariableName]> = [
      ['maxConcurrent', 'RELAY_MAX_CONCURRENT'],
      ['maxConcurrentPerClient', 'RELAY_MAX_CONCURRENT_PER_CLIENT'],
      ['rateLimit', 'RELAY_RATE_LIMIT'],
      ['maxEventLoopDelayMs', 'RELAY_MAX_EVENT_LOOP_DELAY_MS']
    ]
    for (const [value, name] of OFF_SWITCHES) {
      assert.equal((VARIABLES[name].schema as { default?: unknown }).default, 0, `${name} is off in the relay`)
      assert.ok(values.relay.limits[value] > 0, `relay.limits.${value} is on in the chart`)
    }
    const { maxConcurrent, queueLimit, maxConcurrentPerClient } = values.relay.limits
    assert.ok(maxConcurrentPerClient < maxConcurrent, 'one client can never hold every GPU slot')
    assert.ok(queueLimit > maxConcurrent, 'the queue holds a burst beyond the slots')
    assert.ok(queueLimit <= (VARIABLES.RELAY_QUEUE_LIMIT.schema as { default: number }).default, 'no longer a queue than the relay\'s own')
  })

  it('the chart\'s defaults are the relay\'s defaults, but for the workers: one under the chart\'s 500m CPU limit', async () => {
    // bench/PI.md: under --cpus 0.5 one worker gives more throughput, a lower p99 and less memory
    // than two or three; the relay's own default (2) is for a host with cores to spare.
    assert.equal(values.relay.workers, 1)
    assert.equal(values.resources.limits.cpu, '500m')
    assert.equal((VARIABLES.RELAY_WORKERS.schema as { default?: unknown }).default, 2)
    const defaults: Record<string, unknown> = {
      RELAY_PORT: values.relay.port,
      RELAY_LOG_LEVEL: values.relay.logLevel,
      // upstream.url is empty by default: the GPU Service on its port, which is the relay's own default.
      UPSTREAM_URL: (await render({})).env.UPSTREAM_URL,
      RELAY_UPSTREAM_TIMEOUT_SECONDS: values.relay.upstreamTimeoutSeconds,
      RELAY_BODY_LIMIT_BYTES: values.relay.bodyLimitBytes,
      RELAY_SHUTDOWN_DELAY_SECONDS: values.relay.shutdownDelaySeconds,
      RELAY_SHUTDOWN_TIMEOUT_SECONDS: values.relay.shutdownTimeoutSeconds
    }
    for (const [name, value] of Object.entries(defaults)) {
      assert.equal(value, (VARIABLES[name as VariableName].schema as { default?: unknown }).default, name)
    }
    assert.equal(values.upstream.url, '', 'upstream.url follows the GPU Service unless set')
    assert.equal(values.relay.port, values.gpuExternalName.port, 'relay and GPU server both default to 5010')
  })

  it('values.schema.json accepts no relay.* number the relay would refuse', () => {
    // The chart may be stricter (a Kubernetes port can't be 0), never looser.
    interface Bounds { type: string, minimum?: number, maximum?: number, exclusiveMinimum?: number }
    const within = (label: string, chart: Bounds, relay: Bounds): void => {
      assert.ok(chart.type === relay.type || (chart.type === 'integer' && relay.type === 'number'), `${label}: type ${chart.type} vs ${relay.type}`)
      const lower = (b: Bounds): [number, boolean] => b.exclusiveMinimum !== undefined ? [b.exclusiveMinimum, true] : [b.minimum ?? -Infinity, false]
      const [chartLow, chartExclusive] = lower(chart)
      const [relayLow, relayExclusive] = lower(relay)
      assert.ok(chartLow > relayLow || (chartLow === relayLow && (chartExclusive || !relayExclusive)), `${label}: lower bound ${chartLow} is below the relay's ${relayLow}`)
      assert.ok(chart.maximum !== undefined && relay.maximum !== undefined && chart.maximum <= relay.maximum, `${label}: maximum ${chart.maximum} above the relay's ${relay.maximum}`)
    }
    const pairs: Array<[string, VariableName]> = [
      ['workers', 'RELAY_WORKERS'],
      ['upstreamTimeoutSeconds', 'RELAY_UPSTREAM_TIMEOUT_SECONDS'],
      ['bodyLimitBytes', 'RELAY_BODY_LIMIT_BYTES'],
      ['shutdownDelaySeconds', 'RELAY_SHUTDOWN_DELAY_SECONDS'],
      ['shutdownTimeoutSeconds', 'RELAY_SHUTDOWN_TIMEOUT_SECONDS']
    ]
    for (const [value, name] of pairs) within(`relay.${value}`, relaySchema[value], VARIABLES[name].schema as Bounds)
    const limitPairs: Array<[string, VariableName]> = [
      ['maxConcurrent', 'RELAY_MAX_CONCURRENT'],
      ['queueLimit', 'RELAY_QUEUE_LIMIT'],
      ['queueTimeoutSeconds', 'RELAY_QUEUE_TIMEOUT_SECONDS'],
      ['maxConcurrentPerClient', 'RELAY_MAX_CONCURRENT_PER_CLIENT'],
      ['rateLimit', 'RELAY_RATE_LIMIT'],
      ['rateLimitWindowSeconds', 'RELAY_RATE_LIMIT_WINDOW_SECONDS'],
      ['maxEventLoopDelayMs', 'RELAY_MAX_EVENT_LOOP_DELAY_MS']
    ]
    const limitsSchema = relaySchema.limits.properties
    assert.deepEqual(Object.keys(limitsSchema).sort(), limitPairs.map(([value]) => value).sort(), 'every limit is paired with its variable')
    for (const [value, name] of limitPairs) within(`relay.limits.${value}`, limitsSchema[value], VARIABLES[name].schema as Bounds)
    loadConfig(Object.fromEntries(limitPairs.map(([value, name]) => [name, String(limitsSchema[value].maximum)])))
    assert.equal(relaySchema.port.$ref, '#/definitions/port')
    within('relay.port', schema.definitions.port, VARIABLES.RELAY_PORT.schema as Bounds)
    // And the extremes the chart accepts really load.
    loadConfig({
      RELAY_PORT: String(schema.definitions.port.maximum),
      RELAY_WORKERS: String(relaySchema.workers.maximum),
      RELAY_BODY_LIMIT_BYTES: String(relaySchema.bodyLimitBytes.maximum),
      RELAY_UPSTREAM_TIMEOUT_SECONDS: String(relaySchema.upstreamTimeoutSeconds.maximum),
      RELAY_SHUTDOWN_DELAY_SECONDS: String(relaySchema.shutdownDelaySeconds.maximum),
      RELAY_SHUTDOWN_TIMEOUT_SECONDS: String(relaySchema.shutdownTimeoutSeconds.minimum)
    })
  })

  it('relay.logLevel accepts exactly the relay\'s level names, in upper and lower case', () => {
    const expected = [...LOG_LEVEL_NAMES, ...LOG_LEVEL_NAMES.map((n) => n.toLowerCase())].sort()
    assert.deepEqual([...relaySchema.logLevel.enum].sort(), expected)
    for (const name of relaySchema.logLevel.enum as string[]) loadConfig({ RELAY_LOG_LEVEL: name })
  })

  it('_validate.tpl refuses extraEnv for exactly the variables the chart sets', async () => {
    const everything = { relay: { trustProxy: ['10.42.0.0/16'], metricsToken: { existingSecret: 's' } }, redis: { existingSecret: 'relay-redis' }, upstream: { url: 'https://gpu-server:5010', ca: { existingConfigMap: 'ca' } } }
    const r = await render(everything)
    const managed = Object.keys(relayEnv(r))
    assert.ok(managed.includes('NODE_EXTRA_CA_CERTS'))
    assert.ok(managed.includes('RELAY_REDIS_URL') && managed.includes('RELAY_RATE_LIMIT'))
    const unmanaged = [...VARIABLE_NAMES, ...NODE_OWN_VARIABLES].filter((n) => !managed.includes(n))
    await Promise.all([
      ...managed.map(async (name) => {
        const error = await renderError({ ...everything, extraEnv: [{ name, value: '1' }] })
        assert.match(error, new RegExp(`extraEnv sets ${name}, which the chart sets`))
      }),
      // The rest (e.g. RELAY_METRICS_MAX_ENDPOINTS, RELAY_HOST) stay available through extraEnv.
      ...unmanaged.map(async (name) => {
        await render({ ...everything, extraEnv: [{ name, value: 'x' }] })
      }),
      // Without upstream.ca, NODE_EXTRA_CA_CERTS is the operator's to set (with extraVolumes).
      render({ extraEnv: [{ name: 'NODE_EXTRA_CA_CERTS', value: '/etc/certs/ca.pem' }] })
    ])
  })
})
