// The chart's dashboard and alerts against a real Prometheus (Debian's `prometheus` package), scraping
// the built relay (dist/server.js) the way the Prometheus Operator scrapes it through the chart's
// ServiceMonitor: the scrape config is generated from the rendered ServiceMonitor and Service (same
// relabelings, so the same job, namespace, pod and endpoint labels), every second instead of every 30s.
//
// Three releases of the chart, each in its own namespace, each with the PrometheusRule it renders:
// - tokenplace: a relay (1 worker, then 2: its /metrics is then the sum over workers) in front of a
//   GPU server stand-in that answers, streams (SSE, first token after 400 ms), redirects, answers
//   404 and 500 and resets the connection; a burst of concurrent slow requests meets the overload
//   protection (RELAY_MAX_CONCURRENT=1, RELAY_QUEUE_LIMIT=2);
// - gpu-off: a relay whose GPU server refuses connections;
// - relay-off: a relay target that does not answer at all.
// Then every query of every dashboard panel runs through Prometheus' HTTP API (the panels of relay
// series must return data), and every rendered alert expression must succeed and fire exactly where
// the traffic says. Prometheus also loads the rendered rules and evaluates them without error.
import { test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { connect } from 'node:net'
import { spawnRelay, type RelayProcess } from '../helpers/relay.js'
import { startUpstream, waitFor } from '../helpers/upstreams.js'
import {
  assertTools, dashboardTargets, loadDashboard, metricNames, operatorScrapeConfig, renderedRules, skipWithout, startPrometheus,
  type PrometheusServer, type QueryResult, type RuleGroup
} from '../helpers/chart-monitoring.js'
import type { Rendered } from '../helpers/chart-helm.js'

const CLUSTER_SERIES = /^(container_[a-z_]+|kube_pod_container_resource_limits)$/

/** The values of the three releases: alerts on, scraped every second; a first-byte threshold the stand-in's 400 ms exceeds. */
const VALUES = {
  metrics: {
    serviceMonitor: { enabled: true, interval: '1s', scrapeTimeout: '1s' },
    prometheusRule: { enabled: true, alerts: { RelaySlowFirstByte: { thresholdSeconds: 0.2 } } },
    dashboard: { enabled: true }
  }
}

/** Which alerts the traffic must make fire, per namespace; every other one must stay quiet. */
const EXPECTED_FIRING: Record<string, string[]> = {
  // 500s, a reset and the rejections are 5xx; the stream's first token takes 400 ms; a burst finds the queue full.
  tokenplace: ['RelayHighErrorRate', 'RelaySlowFirstByte', 'RelayOverloaded'],
  // Every request is refused a connection (502).
  'gpu-off': ['RelayUpstreamUnreachable', 'RelayHighErrorRate'],
  'relay-off': ['RelayDown']
}

/**
 * Where nothing listens: the GPU server of gpu-off and the relay of relay-off. Port 1 (tcpmux), not a
 * freed ephemeral port, which the relays and Prometheus started later could be given again.
 */
const DEAD_ADDRESS = '127.0.0.1:1'

async function assertRefused (address: string): Promise<void> {
  const [host, port] = address.split(':') as [string, string]
  const error = await new Promise<NodeJS.ErrnoException | undefined>((resolve) => {
    const socket = connect(Number(port), host, () => { socket.destroy(); resolve(undefined) })
    socket.once('error', resolve)
  })
  assert.equal(error?.code, 'ECONNREFUSED', `something listens on ${address}, which the test needs to refuse connections`)
}

/** A GPU server stand-in (server.py's shapes): each path one behaviour. */
function gpuServer (req: IncomingMessage, res: ServerResponse): void {
  req.resume()
  const path = new URL(req.url ?? '/', 'http://gpu.invalid').pathname
  if (path === '/v1/chat/completions') {
    // Headers at once, the first token 400 ms later: the time to first byte is the first token's.
    res.writeHead(200, { 'content-type': 'text/event-stream' })
    res.flushHeaders()
    const first = setTimeout(() => {
      res.write('data: {"choices":[{"delta":{"content":"Hello"}}]}\n\n')
      setTimeout(() => res.end('data: [DONE]\n\n'), 20)
    }, 400)
    res.once('close', () => clearTimeout(first))
  } else if (path === '/v1/slow') {
    const timer = setTimeout(() => res.end('{"done":true}'), 600)
    res.once('close', () => clearTimeout(timer))
  } else if (path === '/v1/fail') {
    res.writeHead(500, { 'content-type': 'application/json' }).end('{"error":"model crashed"}')
  } else if (path === '/v1/reset') {
    req.socket.destroy()
  } else if (path === '/moved') {
    res.writeHead(302, { location: '/v1/models' }).end()
  } else if (path === '/v1/models') {
    res.writeHead(200, { 'content-type': 'application/json' }).end('{"data":[{"id":"llama"}]}')
  } else {
    res.writeHead(404).end()
  }
}

async function request (relay: RelayProcess, path: string, method = 'GET'): Promise<number> {
  const response = await fetch(relay.url + path, { method, redirect: 'manual', body: method === 'POST' ? '{"stream":true}' : undefined, headers: method === 'POST' ? { 'content-type': 'application/json' } : {} })
  await response.arrayBuffer().catch(() => {})
  return response.status
}

interface Release { namespace: string, rendered: Rendered, groups: RuleGroup[], file: string, job: string }

async function release (namespace: string): Promise<Release> {
  const { rendered, groups, file } = await renderedRules(VALUES, { args: ['--namespace', namespace] })
  return { namespace, rendered, groups, file, job: rendered.relayService.metadata.name }
}

const finite = (result: QueryResult): boolean => result.result.some((series) => [...(series.values ?? []), ...(series.value === undefined ? [] : [series.value])].some(([, v]) => Number.isFinite(Number(v))))

for (const workers of [1, 2]) {
  test(`a real Prometheus scrapes the built relay through the chart's ServiceMonitor (RELAY_WORKERS=${workers}): the dashboard's queries and the alerts work on its series`, { skip: skipWithout('prometheus', 'promtool'), timeout: 180_000 }, async (t: TestContext) => {
    assertTools('prometheus', 'promtool')
    const [main, gpuOff, relayOff] = await Promise.all([release('tokenplace'), release('gpu-off'), release('relay-off')])
    const releases = [main, gpuOff, relayOff]

    const gpu = await startUpstream(gpuServer)
    t.after(() => gpu.close())
    const relay = await spawnRelay({ UPSTREAM_URL: gpu.url, RELAY_WORKERS: String(workers), RELAY_MAX_CONCURRENT: '1', RELAY_QUEUE_LIMIT: '2', RELAY_SHUTDOWN_DELAY_SECONDS: '0' }, { ready: workers })
    t.after(() => relay.stop())
    await assertRefused(DEAD_ADDRESS)
    const unreachable = await spawnRelay({ UPSTREAM_URL: `http://${DEAD_ADDRESS}`, RELAY_SHUTDOWN_DELAY_SECONDS: '0' })
    t.after(() => unreachable.stop())

    const pod = (r: Release, address: string): { name: string, address: string } => ({ name: `${r.job}-7d4b9c8f6-${r.namespace.replace(/[^a-z]/g, '').slice(0, 5)}`, address })
    const prometheus: PrometheusServer = await startPrometheus({
      global: { scrape_interval: '1s', scrape_timeout: '1s', evaluation_interval: '1s' },
      scrape_configs: [
        operatorScrapeConfig(main.rendered, [pod(main, `127.0.0.1:${relay.port}`)]),
        operatorScrapeConfig(gpuOff.rendered, [pod(gpuOff, `127.0.0.1:${unreachable.port}`)]),
        operatorScrapeConfig(relayOff.rendered, [pod(relayOff, DEAD_ADDRESS)])
      ]
    }, Object.fromEntries(releases.map((r) => [`rules-${r.namespace}.yaml`, r.file])))
    t.after(() => prometheus.stop())

    // Counters only show a rate once Prometheus has seen them before and after: wait for the first
    // scrapes, then send the traffic in rounds, each in scrapes of its own.
    await waitFor(async () => {
      const { activeTargets } = await prometheus.api('/api/v1/targets') as { activeTargets: Array<{ health: string, labels: Record<string, string> }> }
      const health = Object.fromEntries(activeTargets.map((x) => [x.labels.namespace, x.health]))
      return health.tokenplace === 'up' && health['gpu-off'] === 'up' && health['relay-off'] === 'down'
    }, 20_000, 'the first scrapes (two relays up, one target down)')
    const trafficStart = Date.now() / 1000
    let failures = 0
    for (let round = 0; round < 3; round++) {
      for (let i = 0; i < 3; i++) assert.equal(await request(relay, '/v1/models'), 200)
      assert.equal(await request(relay, '/moved'), 302)
      assert.equal(await request(relay, '/missing'), 404)
      for (let i = 0; i < 2; i++) { assert.equal(await request(relay, '/v1/fail', 'POST'), 500); failures++ }
      assert.equal(await request(relay, '/v1/reset'), 502)
      for (let i = 0; i < 2; i++) assert.equal(await request(relay, '/v1/chat/completions', 'POST'), 200)
      // More at once than one slot and a queue of two hold: the overload protection turns some away.
      const burst = await Promise.all(Array.from({ length: 6 }, async () => await request(relay, '/v1/slow', 'POST')))
      assert.ok(burst.every((status) => status === 200 || status === 429 || status === 503), `burst: ${burst.join(', ')}`)
      for (const path of ['/healthz', '/livez']) assert.equal(await request(relay, path), 200)
      for (let i = 0; i < 3; i++) assert.equal(await request(unreachable, '/v1/models'), 502)
      assert.equal(await request(unreachable, '/healthz'), 200)
      await new Promise((resolve) => setTimeout(resolve, 1500))
    }
    const SEL = `job="${main.job}",namespace="tokenplace"`
    // Every answer has been scraped once the last 500 is (the rounds' last requests came later still).
    await waitFor(async () => {
      const r = await prometheus.query(`sum(relay_http_requests_total{${SEL},endpoint="/v1/fail",status="500"})`)
      return Number(r.result[0]?.value?.[1]) === failures
    }, 15_000, `Prometheus to count the ${failures} answers 500`).catch(() => {})
    await new Promise((resolve) => setTimeout(resolve, 2500))
    const now = Date.now() / 1000

    await t.test('the relay\'s labels arrive as the alerts and the dashboard expect them; with workers, each request counted once', async () => {
      const fails = await prometheus.query(`sum(relay_http_requests_total{${SEL},endpoint="/v1/fail",status="500"})`)
      assert.equal(Number(fails.result[0]?.value?.[1]), failures, 'the 500s, summed over the workers, each once')
      const renamed = await prometheus.query('count({__name__=~"relay_.+", exported_endpoint!=""})')
      assert.deepEqual(renamed.result, [], 'no relay series has its endpoint label renamed exported_endpoint')
      const labels = (await prometheus.query(`relay_build_info{${SEL}}`)).result[0]?.metric
      assert.ok(labels !== undefined, 'relay_build_info is scraped')
      for (const key of ['job', 'namespace', 'service', 'pod', 'container', 'instance']) assert.ok(labels[key] !== undefined, `${key} target label`)
      assert.equal(labels.endpoint, undefined, 'the operator\'s endpoint="http" target label is dropped')
    })

    const variables = { namespace: 'tokenplace', job: main.job, __rate_interval: '1m' }
    const dashboard = loadDashboard()

    await t.test('the dashboard\'s namespace and job variables find the relay', async () => {
      for (const v of dashboard.templating.list.filter((x: any) => x.type === 'query')) {
        const m = /^label_values\((.+), (\w+)\)$/.exec(v.query as string)
        assert.ok(m !== null, v.query)
        const match = (m[1] as string).replace('$namespace', variables.namespace)
        const values = await prometheus.api(`/api/v1/label/${m[2] as string}/values`, { 'match[]': match }) as string[]
        assert.ok(values.includes(variables[v.name as 'namespace' | 'job']), `${v.name as string}: ${values.join(', ')}`)
      }
    })

    const targets = dashboardTargets(dashboard).map((target) => ({ ...target, query: target.expr.replace(/\$\{?(\w+)\}?/g, (all, name: string) => (variables as Record<string, string>)[name] ?? all) }))
    const results = new Map<string, QueryResult>()
    await t.test('every query of every dashboard panel succeeds', async () => {
      for (const target of targets) {
        assert.doesNotMatch(target.query, /\$/, `${target.panel}: a variable left in ${target.query}`)
        results.set(`${target.panel} ${target.refId}`, await prometheus.queryRange(target.query, Math.floor(trafficStart) - 2, Math.ceil(now), 1))
      }
    })

    await t.test('every panel whose series come from the relay returns data', () => {
      const empty: string[] = []
      for (const target of targets) {
        const result = results.get(`${target.panel} ${target.refId}`)
        assert.ok(result !== undefined, `${target.panel}: not queried`)
        if (metricNames(target.expr).some((name) => CLUSTER_SERIES.test(name))) continue // cAdvisor and kube-state-metrics: no kubelet here
        if (!finite(result)) empty.push(`${target.panel} [${target.legendFormat ?? target.refId}]: ${result.result.length === 0 ? 'no series' : 'only NaN'}`)
      }
      assert.deepEqual(empty, [], `panels without data:\n  ${empty.join('\n  ')}`)
    })

    await t.test('every rendered alert expression succeeds and fires exactly where the traffic says', async () => {
      const wrong: string[] = []
      for (const r of releases) {
        for (const rule of r.groups.flatMap((g) => g.rules)) {
          const { result } = await prometheus.query(rule.expr)
          const expected = EXPECTED_FIRING[r.namespace]?.includes(rule.alert) === true
          if (expected !== (result.length > 0)) wrong.push(`${r.namespace}: ${rule.alert} ${expected ? 'returned nothing' : `fired: ${JSON.stringify(result)}`}`)
          for (const series of result) {
            assert.equal(series.metric.namespace, r.namespace, `${rule.alert}: only its own namespace`)
            assert.equal(series.metric.job, r.job, `${rule.alert}: only its own job`)
          }
        }
      }
      assert.deepEqual(wrong, [], `alerts that do not match the traffic:\n  ${wrong.join('\n  ')}`)
    })

    await t.test('Prometheus loads the rendered rules and evaluates them without error', async () => {
      await waitFor(async () => {
        const { groups } = await prometheus.api('/api/v1/rules') as { groups: Array<{ rules: Array<{ lastEvaluation: string }> }> }
        return groups.length === 3 && groups.every((g) => g.rules.every((r) => Date.parse(r.lastEvaluation) / 1000 > now))
      }, 10_000, 'every rule evaluated after the traffic')
      const { groups } = await prometheus.api('/api/v1/rules') as { groups: Array<{ file: string, rules: Array<{ name: string, health: string, lastError?: string, state: string }> }> }
      const states: string[] = []
      for (const group of groups) {
        const namespace = /rules-(.+)\.yaml$/.exec(group.file)?.[1] as string
        for (const rule of group.rules) {
          assert.equal(rule.health, 'ok', `${namespace} ${rule.name}: ${rule.lastError ?? ''}`)
          const active = rule.state === 'pending' || rule.state === 'firing'
          if (active !== (EXPECTED_FIRING[namespace]?.includes(rule.name) === true)) states.push(`${namespace}: ${rule.name} is ${rule.state}`)
        }
      }
      assert.deepEqual(states, [], `rule states that do not match the traffic:\n  ${states.join('\n  ')}`)
    })
  })
}
