// The chart's monitoring objects (issue 12) and the real tools that prove them: the rules the chart
// renders, the dashboard it ships, promtool, and a Prometheus (both from Debian's `prometheus` package)
// started on a free loopback port with a temporary config and data directory, and stopped by the test.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import assert from 'node:assert/strict'
import { stringify as toYaml } from 'yaml'
import { freePort } from '../../harness/ports.js'
import { CHART_DIR, render, type Rendered, type RenderOptions } from './chart-helm.js'

// ---- Tools ------------------------------------------------------------------------------------------

/** CI (.ci/run) installs Debian's prometheus package and sets this: a missing tool fails there. */
export const TOOLS_REQUIRED = process.env.RELAY_TEST_REQUIRE_TOOLS === '1'

const available = new Map<string, boolean>()
export function hasTool (name: 'promtool' | 'prometheus'): boolean {
  if (!available.has(name)) available.set(name, spawnSync(name, ['--version'], { encoding: 'utf8' }).status === 0)
  return available.get(name) as boolean
}

/** For a test's `skip`: the visible reason when the tool is missing and CI does not require it. */
export function skipWithout (...names: Array<'promtool' | 'prometheus'>): string | false {
  const missing = names.filter((name) => !hasTool(name))
  if (missing.length === 0 || TOOLS_REQUIRED) return false
  return `${missing.join(' and ')} not installed (apt-get install prometheus); RELAY_TEST_REQUIRE_TOOLS=1 makes this a failure`
}

/** First line of a test that runs the tools: fails when they are required and missing. */
export function assertTools (...names: Array<'promtool' | 'prometheus'>): void {
  for (const name of names) assert.ok(hasTool(name), `${name} is required (RELAY_TEST_REQUIRE_TOOLS=1) but not installed: apt-get install prometheus`)
}

const tempDirs = new Set<string>()
process.once('exit', () => { for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true }) })

/** A temporary directory, removed when the test process exits (or earlier by whoever owns it). */
export function tempDir (prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix))
  tempDirs.add(dir)
  return dir
}

// ---- The relay's metrics (the contract the alerts and the dashboard are written against) -----------

export interface RelayMetric {
  type: 'counter' | 'gauge' | 'histogram'
  labels: string[]
  /** Allowed values of a label, where the relay bounds them. */
  values?: Record<string, string[]>
  buckets?: string[]
}

const le = (buckets: number[]): string[] => [...buckets.map(String), '+Inf']

/** What the relay exports (README "Metrics"; the last six since issue 12 and the overload issue). */
export const RELAY_METRICS: Record<string, RelayMetric> = {
  relay_http_requests_total: { type: 'counter', labels: ['method', 'endpoint', 'status'] },
  relay_http_request_duration_seconds: { type: 'histogram', labels: ['method', 'endpoint', 'status'], buckets: le([0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600]) },
  relay_upstream_errors_total: { type: 'counter', labels: ['reason'], values: { reason: ['connect', 'dns', 'timeout', 'reset'] } },
  relay_build_info: { type: 'gauge', labels: ['version', 'revision'] },
  relay_upstream_time_to_first_byte_seconds: { type: 'histogram', labels: ['method', 'endpoint'], buckets: le([0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60, 120, 300]) },
  relay_upstream_requests_in_flight: { type: 'gauge', labels: [] },
  relay_queue_length: { type: 'gauge', labels: [] },
  relay_queue_wait_seconds: { type: 'histogram', labels: [], buckets: le([0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120]) },
  relay_rejected_requests_total: { type: 'counter', labels: ['reason'], values: { reason: ['queue_full', 'queue_timeout', 'client_concurrency', 'rate_limit', 'overloaded'] } },
  relay_rate_limit_store_errors_total: { type: 'counter', labels: [] }
}

/** The series names a metric is stored under: histograms as _bucket, _sum and _count. */
export function seriesNames (name: string): Array<{ series: string, labels: string[] }> {
  const m = RELAY_METRICS[name] as RelayMetric
  if (m.type !== 'histogram') return [{ series: name, labels: m.labels }]
  return [{ series: `${name}_bucket`, labels: [...m.labels, 'le'] }, { series: `${name}_sum`, labels: m.labels }, { series: `${name}_count`, labels: m.labels }]
}

/** The target labels the Prometheus Operator gives the chart's ServiceMonitor targets (`endpoint` dropped by the chart). */
export const TARGET_LABELS = ['job', 'namespace', 'service', 'pod', 'container', 'instance']

/** Metrics prom-client's default collectors export (process_*, nodejs_*), which the dashboard may read too. */
export const PROCESS_METRIC = /^(process|nodejs)_[a-z0-9_]+$/

// ---- The rules --------------------------------------------------------------------------------------

/** The values that turn the alerts on (the ServiceMonitor they watch is required). */
export const MONITORING_VALUES = { metrics: { serviceMonitor: { enabled: true }, prometheusRule: { enabled: true } } }

export interface AlertRule {
  alert: string
  expr: string
  for: string
  labels: Record<string, string>
  annotations: Record<string, string>
}
export interface RuleGroup { name: string, rules: AlertRule[] }

/** The PrometheusRule the chart renders, as a Prometheus rule file (its spec) and its groups. */
export async function renderedRules (values: object = MONITORING_VALUES, options?: RenderOptions): Promise<{ file: string, groups: RuleGroup[], rendered: Rendered }> {
  const rendered = await render(values, options)
  const spec = rendered.one('PrometheusRule').spec as { groups: RuleGroup[] }
  return { file: toYaml(spec, { lineWidth: 0 }), groups: spec.groups, rendered }
}

export function promtool (args: string[], cwd?: string): { status: number | null, output: string } {
  const result = spawnSync('promtool', args, { cwd, encoding: 'utf8', timeout: 60_000 })
  return { status: result.status, output: `${result.stdout}${result.stderr}` }
}

// ---- The dashboard ----------------------------------------------------------------------------------

export const DASHBOARD_FILE = join(CHART_DIR, 'dashboards', 'tokenplace-relay.json')

export function loadDashboard (): any {
  return JSON.parse(readFileSync(DASHBOARD_FILE, 'utf8'))
}

export interface PanelTarget { panel: string, refId: string, expr: string, legendFormat?: string }

/** Every query of every panel (rows included), in order. */
export function dashboardTargets (dashboard: any): PanelTarget[] {
  const panels: any[] = []
  const walk = (list: any[]): void => {
    for (const p of list ?? []) { panels.push(p); walk(p.panels) }
  }
  walk(dashboard.panels)
  return panels.flatMap((p) => (p.targets ?? []).map((t: any) => ({ panel: p.title, refId: t.refId, expr: t.expr, legendFormat: t.legendFormat })))
}

/** A query with Grafana's variables replaced: `$name` and `${name}`, known names only (as Grafana does). */
export function substitute (expr: string, variables: Record<string, string>): string {
  return expr.replace(/\$\{(\w+)\}|\$(\w+)/g, (match, braced?: string, bare?: string) => {
    const name = (braced ?? bare) as string
    return Object.hasOwn(variables, name) ? variables[name] as string : match
  })
}

/** Metric names a PromQL expression reads (identifiers before `{` or `[` or a bare name), keywords left out. */
export function metricNames (expr: string): string[] {
  const withoutStrings = expr.replace(/"(?:[^"\\]|\\.)*"/g, '""')
  const keywords = new Set(['sum', 'max', 'min', 'avg', 'count', 'group', 'by', 'without', 'on', 'ignoring', 'group_left', 'group_right',
    'rate', 'irate', 'increase', 'histogram_quantile', 'absent', 'vector', 'or', 'and', 'unless', 'bool', 'offset', 'label_replace', 'clamp_min', 'clamp_max'])
  const names = new Set<string>()
  // Label matchers {...}, range windows [...], grouping lists by (...) and numbers are not metrics.
  const stripped = withoutStrings
    .replace(/\{[^}]*\}/g, '{}')
    .replace(/\[[^\]]*\]/g, '')
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, '')
    .replace(/(?<![a-zA-Z0-9_:.])[0-9][0-9.eE+-]*/g, '')
  for (const m of stripped.matchAll(/[a-zA-Z_:][a-zA-Z0-9_:]*/g)) {
    const word = m[0]
    const next = stripped.slice((m.index ?? 0) + word.length).trimStart()[0]
    if (keywords.has(word) || next === '(') continue
    names.add(word)
  }
  return [...names]
}

// ---- A real Prometheus ------------------------------------------------------------------------------

export interface QueryResult { resultType: string, result: Array<{ metric: Record<string, string>, value?: [number, string], values?: Array<[number, string]> }> }

export interface PrometheusServer {
  url: string
  dir: string
  logs: () => string
  /** GET an API path; asserts HTTP 200 and status "success", returns `data`. */
  api: (path: string, params?: Record<string, string | string[]>) => Promise<any>
  query: (expr: string) => Promise<QueryResult>
  queryRange: (expr: string, start: number, end: number, step: number) => Promise<QueryResult>
  stop: () => Promise<void>
}

const runningPrometheus = new Set<ChildProcess>()
process.once('exit', () => {
  for (const child of runningPrometheus) { try { process.kill(-(child.pid as number), 'SIGKILL') } catch {} }
})

/**
 * Starts `prometheus` with this config (an object, written as prometheus.yml) and rule files (name →
 * contents, next to it), its TSDB in a temporary directory, on a free port of 127.0.0.1. Resolves once
 * /-/ready answers; `stop()` ends it (SIGTERM, then SIGKILL) and removes the directory.
 */
export async function startPrometheus (config: object, ruleFiles: Record<string, string> = {}): Promise<PrometheusServer> {
  const dir = tempDir('tokenplace-prometheus-')
  for (const [name, text] of Object.entries(ruleFiles)) writeFileSync(join(dir, name), text)
  writeFileSync(join(dir, 'prometheus.yml'), toYaml({ ...config, rule_files: Object.keys(ruleFiles) }))
  const check = promtool(['check', 'config', join(dir, 'prometheus.yml')])
  assert.equal(check.status, 0, `promtool check config refused the test's own config:\n${check.output}`)

  for (let attempt = 1; ; attempt++) {
    const port = await freePort()
    const child = spawn('prometheus', [
      `--config.file=${join(dir, 'prometheus.yml')}`,
      `--storage.tsdb.path=${join(dir, 'data')}`,
      `--web.listen-address=127.0.0.1:${port}`,
      '--storage.tsdb.retention.time=1h',
      '--log.level=warn'
    ], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'], detached: true })
    runningPrometheus.add(child)
    let output = ''
    child.stdout?.on('data', (chunk: Buffer) => { output += chunk.toString() })
    child.stderr?.on('data', (chunk: Buffer) => { output += chunk.toString() })
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)))
    const url = `http://127.0.0.1:${port}`
    const stop = async (): Promise<void> => {
      if (child.exitCode === null && child.signalCode === null) {
        try { process.kill(-(child.pid as number), 'SIGTERM') } catch {}
        const timer = setTimeout(() => { try { process.kill(-(child.pid as number), 'SIGKILL') } catch {} }, 5000)
        await exited
        clearTimeout(timer)
      }
      runningPrometheus.delete(child)
      rmSync(dir, { recursive: true, force: true })
    }
    const ready = await Promise.race([
      (async () => {
        const deadline = Date.now() + 30_000
        while (Date.now() < deadline) {
          try {
            if ((await fetch(`${url}/-/ready`)).status === 200) return true
          } catch {}
          await new Promise((resolve) => setTimeout(resolve, 100))
        }
        return false
      })(),
      exited.then(() => false)
    ])
    if (!ready) {
      const inUse = /address already in use/.test(output)
      await stop().catch(() => {})
      if (inUse && attempt < 3) continue
      throw new Error(`prometheus did not become ready on ${url}:\n${output}`)
    }

    const api = async (path: string, params: Record<string, string | string[]> = {}): Promise<any> => {
      const search = new URLSearchParams()
      for (const [key, value] of Object.entries(params)) for (const v of ([] as string[]).concat(value)) search.append(key, v)
      const response = await fetch(`${url}${path}?${search.toString()}`)
      const body = await response.json() as { status: string, data?: any, error?: string, errorType?: string }
      assert.equal(response.status, 200, `${path} ${JSON.stringify(params)}: HTTP ${response.status} ${body.errorType ?? ''}: ${body.error ?? ''}`)
      assert.equal(body.status, 'success', `${path} ${JSON.stringify(params)}: ${body.error ?? ''}`)
      return body.data
    }
    return {
      url,
      dir,
      logs: () => output,
      api,
      query: async (expr) => await api('/api/v1/query', { query: expr }) as QueryResult,
      queryRange: async (expr, start, end, step) => await api('/api/v1/query_range', { query: expr, start: String(start), end: String(end), step: String(step) }) as QueryResult,
      stop
    }
  }
}

// ---- What the Prometheus Operator makes of the chart's ServiceMonitor --------------------------------

const sanitize = (name: string): string => name.replace(/[^a-zA-Z0-9_]/g, '_')

function snakeRelabeling (r: Record<string, unknown>): Record<string, unknown> {
  const keys: Record<string, string> = { sourceLabels: 'source_labels', targetLabel: 'target_label' }
  const out: Record<string, unknown> = {}
  for (const [key, value] of Object.entries(r)) out[keys[key] ?? key] = key === 'action' ? String(value).toLowerCase() : value
  return out
}

export interface SimulatedPod { name: string, address: string }

/**
 * The scrape config the Prometheus Operator generates from the chart's rendered ServiceMonitor and
 * Service, for pods at fixed loopback addresses (there is no cluster here, so the Kubernetes
 * discovery's meta labels are given as static labels): the same relabelings in the same order
 * (namespace, service, pod, container, job from the Service name or jobLabel, endpoint from the port
 * name), then the ServiceMonitor's own relabelings and metricRelabelings; its interval and timeout.
 * Not reproduced: the selection of the Service and port (the test gives the pods) and bearer tokens.
 */
export function operatorScrapeConfig (rendered: Rendered, pods: SimulatedPod[]): Record<string, unknown> {
  const sm = rendered.one('ServiceMonitor')
  const service = rendered.relayService
  const [endpoint] = sm.spec.endpoints as Array<Record<string, any>>
  assert.ok(endpoint !== undefined)
  const serviceLabels = Object.fromEntries(Object.entries(service.metadata.labels ?? {}).map(([k, v]) => [`__meta_kubernetes_service_label_${sanitize(k)}`, v]))
  const relabelConfigs: Array<Record<string, unknown>> = [
    { source_labels: ['__meta_kubernetes_namespace'], target_label: 'namespace' },
    { source_labels: ['__meta_kubernetes_service_name'], target_label: 'service' },
    { source_labels: ['__meta_kubernetes_pod_name'], target_label: 'pod' },
    { source_labels: ['__meta_kubernetes_pod_container_name'], target_label: 'container' },
    { source_labels: ['__meta_kubernetes_service_name'], target_label: 'job', replacement: '$1' }
  ]
  if (sm.spec.jobLabel !== undefined) {
    relabelConfigs.push({ source_labels: [`__meta_kubernetes_service_label_${sanitize(sm.spec.jobLabel)}`], target_label: 'job', regex: '(.+)', replacement: '$1' })
  }
  relabelConfigs.push({ target_label: 'endpoint', replacement: endpoint.port })
  relabelConfigs.push(...(endpoint.relabelings ?? []).map(snakeRelabeling))
  return {
    job_name: `serviceMonitor/${sm.metadata.namespace as string}/${sm.metadata.name}/0`,
    honor_labels: endpoint.honorLabels === true,
    scrape_interval: endpoint.interval,
    scrape_timeout: endpoint.scrapeTimeout,
    metrics_path: endpoint.path,
    scheme: endpoint.scheme,
    static_configs: pods.map((pod) => ({
      targets: [pod.address],
      labels: {
        __meta_kubernetes_namespace: service.metadata.namespace,
        __meta_kubernetes_service_name: service.metadata.name,
        __meta_kubernetes_pod_name: pod.name,
        __meta_kubernetes_pod_container_name: rendered.container.name,
        ...serviceLabels
      }
    })),
    relabel_configs: relabelConfigs,
    metric_relabel_configs: (endpoint.metricRelabelings ?? []).map(snakeRelabeling)
  }
}
