// The chart's alerts through Prometheus' own promtool (Debian's `prometheus` package): the rules helm
// renders must pass `promtool check rules`, and the unit tests in test/ops/alerts/ (a firing and a quiet
// case for each alert, on series shaped like the relay's exposition as scraped through the chart's
// ServiceMonitor) must pass against the rendered rules, and fail once a threshold moves past them.
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { copyFileSync, readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parse as parseYaml } from 'yaml'
import { MATRIX } from '../helpers/chart-cases.js'
import {
  assertTools, MONITORING_VALUES, promtool, RELAY_METRICS, renderedRules, seriesNames, skipWithout, TARGET_LABELS, tempDir
} from '../helpers/chart-monitoring.js'

const TESTS_DIR = fileURLToPath(new URL('./alerts/', import.meta.url))
const FILES = readdirSync(TESTS_DIR).filter((f) => f.endsWith('.yaml')).sort()
const ALERTS = ['RelayDown', 'RelayUpstreamUnreachable', 'RelayNotReady', 'RelayHighErrorRate', 'RelaySlowFirstByte', 'RelayOverloaded', 'RelayRateLimitStoreDown']

interface UnitTest {
  name: string
  input_series: Array<{ series: string, values: string }>
  alert_rule_test: Array<{ eval_time: string, alertname: string, exp_alerts: unknown[] }>
}
const load = (file: string): { rule_files: string[], tests: UnitTest[] } => parseYaml(readFileSync(join(TESTS_DIR, file), 'utf8'))

/** Runs `promtool test rules` on the unit-test files, against rules rendered with these values. */
async function runUnitTests (files: string[], values: object = MONITORING_VALUES): Promise<{ status: number | null, output: string }> {
  const { file } = await renderedRules(values)
  const dir = tempDir('tokenplace-alert-tests-')
  writeFileSync(join(dir, 'rules.yaml'), file)
  for (const f of files) copyFileSync(join(TESTS_DIR, f), join(dir, f))
  return promtool(['test', 'rules', ...files], dir)
}

describe('the rendered alerts, through promtool', { concurrency: true, skip: skipWithout('promtool') }, () => {
  it('promtool check rules accepts what the chart renders: the defaults, every value changed, another job label', async () => {
    assertTools('promtool')
    const everything = MATRIX.find((c) => c.name === 'everything on')?.values as object
    const cases: Array<[string, object, number]> = [
      ['defaults', MONITORING_VALUES, 7],
      ['everything on', everything, 6],
      ['jobLabel and other reasons', { metrics: { serviceMonitor: { enabled: true, jobLabel: 'app.kubernetes.io/name' }, prometheusRule: { enabled: true, alerts: { RelayOverloaded: { reasons: ['client_concurrency'], threshold: 0.0001 }, RelaySlowFirstByte: { thresholdSeconds: 299.5 } } } } }, 7]
    ]
    for (const [name, values, count] of cases) {
      const { file, groups } = await renderedRules(values)
      assert.equal(groups.flatMap((g) => g.rules).length, count, name)
      const dir = tempDir('tokenplace-rules-')
      writeFileSync(join(dir, 'rules.yaml'), file)
      const { status, output } = promtool(['check', 'rules', join(dir, 'rules.yaml')])
      assert.equal(status, 0, `${name}: ${output}`)
      assert.match(output, new RegExp(`SUCCESS: ${count} rules found`), name)
    }
  })

  for (const file of FILES) {
    it(`promtool test rules ${file}`, async () => {
      assertTools('promtool')
      const { status, output } = await runUnitTests([file])
      assert.equal(status, 0, output)
      assert.match(output, /SUCCESS/)
    })
  }

  it('the unit tests can fail: with the thresholds and for durations moved past them, every firing case fails', async () => {
    assertTools('promtool')
    const moved = {
      metrics: {
        serviceMonitor: { enabled: true },
        prometheusRule: {
          enabled: true,
          alerts: {
            RelayDown: { for: '1h' },
            RelayUpstreamUnreachable: { for: '1h' },
            RelayNotReady: { for: '1h' },
            RelayHighErrorRate: { threshold: 0.5 },
            RelaySlowFirstByte: { thresholdSeconds: 100 },
            RelayOverloaded: { threshold: 0.5 },
            RelayRateLimitStoreDown: { for: '1h' }
          }
        }
      }
    }
    const { status, output } = await runUnitTests(FILES, moved)
    assert.notEqual(status, 0, output)
    for (const alert of ALERTS) assert.match(output, new RegExp(`alertname: ${alert}\\b`), `a failing case for ${alert}:\n${output}`)
  })
})

describe('the alert unit tests themselves', () => {
  it('read the rendered rules and cover every alert with a firing and a quiet case', async () => {
    const { groups } = await renderedRules()
    assert.deepEqual(groups.flatMap((g) => g.rules.map((r) => r.alert)), ALERTS)
    for (const alert of ALERTS) {
      const cases = FILES.flatMap((f) => load(f).tests).map((t) => t.alert_rule_test.filter((a) => a.alertname === alert)).filter((checks) => checks.length > 0)
      assert.ok(cases.some((checks) => checks.some((c) => c.exp_alerts.length > 0)), `${alert}: a case where it fires`)
      assert.ok(cases.some((checks) => checks.every((c) => c.exp_alerts.length === 0)), `${alert}: a case where it stays quiet`)
    }
    for (const f of FILES) assert.deepEqual(load(f).rule_files, ['rules.yaml'], f)
  })

  it('feed series shaped like the relay\'s exposition behind the chart\'s ServiceMonitor', () => {
    const known = new Map(Object.entries(RELAY_METRICS).flatMap(([name, metric]) => seriesNames(name).map((s) => [s.series, { ...s, metric }] as const)))
    let relaySeries = 0
    for (const f of FILES) {
      for (const t of load(f).tests) {
        for (const { series } of t.input_series) {
          const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)\{(.*)\}$/.exec(series)
          assert.ok(m !== null, `${f}: ${series}`)
          const [, name, body] = m as unknown as [string, string, string]
          const labels = Object.fromEntries([...body.matchAll(/([a-zA-Z_]\w*)="([^"]*)"/g)].map((x) => [x[1] as string, x[2] as string]))
          if (name === 'up' && labels.service !== 'relay-tokenplace-relay') continue // another target Prometheus scrapes
          const spec: { labels: string[], metric: { values?: Record<string, string[]>, buckets?: string[] } } | undefined = name === 'up' ? { labels: [], metric: {} } : known.get(name)
          assert.ok(spec !== undefined, `${f}: ${name} is not a metric the relay exports`)
          assert.deepEqual(Object.keys(labels).sort(), [...spec.labels, ...TARGET_LABELS].sort(), `${f}: the labels of ${series}`)
          for (const [label, allowed] of Object.entries(spec.metric.values ?? {})) assert.ok(allowed.includes(labels[label] as string), `${f}: ${label}="${labels[label]}"`)
          if (labels.le !== undefined) assert.ok(spec.metric.buckets?.includes(labels.le), `${f}: le="${labels.le}" is not a bucket of ${name}`)
          assert.equal(labels.job, 'relay-tokenplace-relay', `${f}: job is the relay Service's name`)
          assert.equal(labels.container, 'relay')
          assert.match(labels.instance as string, /^10\.42\.\d+\.\d+:5010$/, 'a pod IP and the relay\'s port')
          relaySeries++
        }
      }
    }
    assert.ok(relaySeries > 100, `${relaySeries} relay series`)
  })
})
