// The Grafana dashboard the chart ships (charts/tokenplace-relay/dashboards/tokenplace-relay.json):
// a plain file that imports by hand as well as through the sidecar, on a Prometheus data source
// variable, with namespace and job variables, the panels issue 12 asks for, and queries that read only
// the relay's metrics (or the cluster's cAdvisor and kube-state-metrics series for the pods). Every
// query is also run against a real Prometheus in test/ops/prometheus.test.ts.
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { DASHBOARD_FILE, dashboardTargets, loadDashboard, metricNames, PROCESS_METRIC, RELAY_METRICS, seriesNames } from '../helpers/chart-monitoring.js'

const dashboard = loadDashboard()
const panels: any[] = dashboard.panels
const targets = dashboardTargets(dashboard)
const DATASOURCE = { type: 'prometheus', uid: '${datasource}' } // eslint-disable-line no-template-curly-in-string
const RELAY_SERIES = new Set(Object.keys(RELAY_METRICS).flatMap((name) => seriesNames(name).map((s) => s.series)))
/** Series of the cluster, not the relay: the kubelet's cAdvisor and kube-state-metrics. */
const CLUSTER_SERIES = /^(container_[a-z_]+|kube_pod_container_resource_limits)$/

function panel (title: RegExp): any {
  const found = panels.filter((p) => title.test(p.title))
  assert.equal(found.length, 1, `one panel titled ${String(title)}: ${panels.map((p) => p.title).join(', ')}`)
  return found[0]
}
const exprs = (p: any): string[] => p.targets.map((t: any) => t.expr as string)

describe('the dashboard JSON', () => {
  it('is a plain, importable dashboard: JSON, no __inputs, no fixed id, a stable uid', () => {
    const text = readFileSync(DASHBOARD_FILE, 'utf8')
    assert.doesNotThrow(() => JSON.parse(text))
    assert.equal(dashboard.__inputs, undefined, 'no __inputs: the file imports as it is, and the sidecar loads it as it is')
    assert.equal(dashboard.__requires, undefined)
    assert.equal(dashboard.id, null)
    assert.equal(dashboard.uid, 'tokenplace-relay')
    assert.equal(dashboard.title, 'tokenplace-relay')
    assert.equal(typeof dashboard.schemaVersion, 'number')
    assert.doesNotMatch(text, /\$\{DS_[A-Z_]+\}/, 'no datasource placeholder of an exported dashboard')
  })

  it('has a data source variable of type prometheus, and namespace and job variables read from it', () => {
    const vars = Object.fromEntries((dashboard.templating.list as any[]).map((v) => [v.name, v]))
    assert.deepEqual(Object.keys(vars), ['datasource', 'namespace', 'job'])
    assert.equal(vars.datasource.type, 'datasource')
    assert.equal(vars.datasource.query, 'prometheus')
    for (const name of ['namespace', 'job']) {
      assert.equal(vars[name].type, 'query', name)
      assert.deepEqual(vars[name].datasource, DATASOURCE, name)
      assert.equal(vars[name].multi, false, `${name}: one at a time, so the queries can use =`)
      assert.equal(vars[name].includeAll, false, name)
    }
    assert.equal(vars.namespace.query, 'label_values(relay_build_info, namespace)')
    assert.equal(vars.job.query, 'label_values(relay_build_info{namespace="$namespace"}, job)')
  })

  it('has the panels issue 12 asks for, each with the queries it names', () => {
    const status = panel(/^Request rate by status class$/)
    assert.deepEqual(status.targets.map((t: any) => t.legendFormat), ['2xx', '3xx', '4xx', '5xx'])
    for (const [i, expr] of exprs(status).entries()) assert.ok(expr.includes(`status=~"${i + 2}.."`) && expr.includes('relay_http_requests_total'), expr)

    const duration = panel(/^Request duration p50 \/ p95 \/ p99$/)
    assert.deepEqual(exprs(duration).map((e) => /^histogram_quantile\((0\.\d+), .*relay_http_request_duration_seconds_bucket/.exec(e)?.[1]), ['0.5', '0.95', '0.99'])

    const ttfb = panel(/^Time to first byte p50 \/ p95$/)
    assert.deepEqual(exprs(ttfb).map((e) => /^histogram_quantile\((0\.\d+), .*relay_upstream_time_to_first_byte_seconds_bucket/.exec(e)?.[1]), ['0.5', '0.95'])

    const capacity = panel(/^Requests in flight and queued$/)
    assert.deepEqual(exprs(capacity).map((e) => metricNames(e)), [['relay_upstream_requests_in_flight'], ['relay_queue_length']])

    const errors = panel(/^Upstream errors by reason$/)
    assert.match(exprs(errors)[0] as string, /^sum by \(reason\) \(rate\(relay_upstream_errors_total\{/)
    const rejections = panel(/^Rejected requests by reason$/)
    assert.match(exprs(rejections)[0] as string, /^sum by \(reason\) \(rate\(relay_rejected_requests_total\{/)
    // The overload issue: the shared rate-limit store's failures (Redis, or the cluster primary), per pod.
    const store = panel(/^Rate-limit store errors$/)
    assert.deepEqual(exprs(store).map((e) => metricNames(e)), [['relay_rate_limit_store_errors_total']])
    assert.match(exprs(store)[0] as string, /^sum by \(pod\) \(rate\(relay_rate_limit_store_errors_total\{/)
    assert.match(store.description, /RelayRateLimitStoreDown/, 'points at the alert\'s runbook')

    const cpu = panel(/^Pod CPU against its limit$/)
    assert.deepEqual(exprs(cpu).map((e) => metricNames(e)[0]), ['container_cpu_usage_seconds_total', 'kube_pod_container_resource_limits'])
    assert.match(exprs(cpu)[1] as string, /resource="cpu"/)
    const memory = panel(/^Pod memory against its limit$/)
    assert.deepEqual(exprs(memory).map((e) => metricNames(e)[0]), ['container_memory_working_set_bytes', 'kube_pod_container_resource_limits'])
    assert.match(exprs(memory)[1] as string, /resource="memory"/)
    for (const p of [cpu, memory]) {
      for (const expr of exprs(p)) assert.match(expr, /container="relay"/, 'the relay container of the chart\'s pods')
    }
  })

  it('every query reads the selected namespace and job, and only the relay\'s metrics or the cluster\'s pod series', () => {
    assert.ok(targets.length >= 20)
    for (const t of targets) {
      const where = `${t.panel} ${t.refId}: ${t.expr}`
      const names = metricNames(t.expr)
      assert.ok(names.length > 0, where)
      for (const name of names) {
        assert.ok(RELAY_SERIES.has(name) || PROCESS_METRIC.test(name) || name === 'up' || CLUSTER_SERIES.test(name), `${where}: ${name} is neither a relay metric nor a cAdvisor/kube-state-metrics series`)
      }
      // Every selector of every series: the namespace, and the job (cluster series reach the job through relay_build_info's pods).
      for (const [, name, matchers] of t.expr.matchAll(/([a-zA-Z_:][a-zA-Z0-9_:]*)\{([^}]*)\}/g)) {
        assert.match(matchers as string, /(^|, )namespace="\$namespace"(,|$)/, `${where}: ${name as string} without namespace="$namespace"`)
        if (!CLUSTER_SERIES.test(name as string)) assert.match(matchers as string, /(^|, )job="\$job"(,|$)/, `${where}: ${name as string} without job="$job"`)
      }
      if (names.some((n) => CLUSTER_SERIES.test(n))) {
        assert.match(t.expr, /\* on \(namespace, pod\) group_left \(\) group by \(namespace, pod\) \(relay_build_info\{namespace="\$namespace", job="\$job"\}\)/, `${where}: restricted to the job's pods`)
      }
      for (const window of t.expr.matchAll(/\[([^\]]+)\]/g)) assert.equal(window[1], '$__rate_interval', `${where}: rate windows follow the scrape interval`)
      assert.doesNotMatch(t.expr, /exported_endpoint/, `${where}: the chart's ServiceMonitor keeps the relay's endpoint label`)
      assert.ok(typeof t.legendFormat === 'string' && t.legendFormat !== '', `${where}: a legend`)
    }
    // The probes are not the users' traffic.
    for (const t of targets.filter((x) => /relay_http_request/.test(x.expr))) assert.match(t.expr, /endpoint!~"\/healthz\|\/livez"/, `${t.panel}: probes left out`)
  })

  it('every panel and query uses the data source variable; panels have unique ids, a description and do not overlap', () => {
    const ids = new Set<number>()
    const cells = new Set<string>()
    for (const p of panels) {
      assert.deepEqual(p.datasource, DATASOURCE, p.title)
      for (const t of p.targets) assert.deepEqual(t.datasource, DATASOURCE, `${p.title} ${t.refId as string}`)
      assert.ok(!ids.has(p.id), `id ${p.id as number} twice`)
      ids.add(p.id)
      assert.ok(typeof p.description === 'string' && p.description.length > 20, `${p.title}: a description`)
      const { x, y, w, h } = p.gridPos
      assert.ok(x >= 0 && w > 0 && x + w <= 24 && h > 0, `${p.title}: inside the 24-column grid`)
      for (let i = x; i < x + w; i++) {
        for (let j = y; j < y + h; j++) {
          assert.ok(!cells.has(`${i},${j}`), `${p.title} overlaps another panel at ${i},${j}`)
          cells.add(`${i},${j}`)
        }
      }
    }
  })
})
