// The documentation of issue 12 says what the chart does: every alert's runbook_url lands on a section
// of the chart README, the alert tables match values.yaml, the README names the new metric with its
// buckets, and the deployment guide says what each alert means and how to install the dashboard.
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { parse as parseYaml } from 'yaml'
import { readmeSection } from '../helpers/readme.js'
import { CHART_DIR } from '../helpers/chart-helm.js'
import { RELAY_METRICS, renderedRules } from '../helpers/chart-monitoring.js'

const chartReadme = readFileSync(join(CHART_DIR, 'README.md'), 'utf8')
const values = parseYaml(readFileSync(join(CHART_DIR, 'values.yaml'), 'utf8'))
const chart = parseYaml(readFileSync(join(CHART_DIR, 'Chart.yaml'), 'utf8')) as { home: string }
const ALERTS = ['RelayDown', 'RelayUpstreamUnreachable', 'RelayNotReady', 'RelayHighErrorRate', 'RelaySlowFirstByte', 'RelayOverloaded', 'RelayRateLimitStoreDown']

/** The anchor GitHub gives a heading: lower case, punctuation dropped, spaces to dashes. */
function anchor (heading: string): string {
  return heading.trim().toLowerCase().replace(/[^\w\- ]/g, '').replace(/ /g, '-')
}
const percent = (share: number): number => Number((share * 100).toPrecision(12))
const anchors = new Set([...chartReadme.matchAll(/^#{2,4} (.+)$/gm)].map((m) => anchor(m[1] as string)))

describe('the alerts\' runbooks', () => {
  it('the default runbookUrl is the chart README on the project\'s main branch', () => {
    assert.equal(values.metrics.prometheusRule.runbookUrl, `${chart.home}/blob/main/charts/tokenplace-relay/README.md`)
  })

  it('every rendered runbook_url is a section of the chart README\'s troubleshooting, and the guide\'s link is too', async () => {
    const { groups } = await renderedRules()
    const rules = groups.flatMap((g) => g.rules)
    assert.deepEqual(rules.map((r) => r.alert), ALERTS)
    const troubleshooting = chartReadme.slice(chartReadme.indexOf('\n## Troubleshooting the alerts\n'))
    assert.ok(anchors.has('troubleshooting-the-alerts'), 'the deployment guide links #troubleshooting-the-alerts')
    for (const rule of rules) {
      const fragment = new URL(rule.annotations.runbook_url as string).hash.slice(1)
      assert.ok(anchors.has(fragment), `${rule.alert}: #${fragment} is a heading of the chart README`)
      assert.ok(troubleshooting.includes(`\n### ${rule.alert}\n`), `${rule.alert}: its section is under Troubleshooting the alerts`)
    }
  })

  it('the chart README\'s alert table gives each alert\'s defaults as values.yaml has them', () => {
    const alerts = values.metrics.prometheusRule.alerts as Record<string, { for: string, severity: string }>
    for (const name of ALERTS) {
      const row = chartReadme.split('\n').find((line) => line.startsWith(`| [${name}](#${name.toLowerCase()}) |`))
      assert.ok(row !== undefined, `${name} row`)
      assert.ok(row.endsWith(`| for ${alerts[name]?.for as string}, ${alerts[name]?.severity as string} |`), row)
    }
    assert.match(chartReadme, new RegExp(`more than ${percent(values.metrics.prometheusRule.alerts.RelayHighErrorRate.threshold)}% of the answers`))
    assert.match(chartReadme, new RegExp(`is above ${values.metrics.prometheusRule.alerts.RelaySlowFirstByte.thresholdSeconds}s`))
    assert.match(chartReadme, new RegExp(`more than ${percent(values.metrics.prometheusRule.alerts.RelayOverloaded.threshold)}% of the requests are rejected for lack of capacity \\(${(values.metrics.prometheusRule.alerts.RelayOverloaded.reasons as string[]).map((r) => `\`${r}\``).join(', ')}\\)`))
  })
})

describe('the README', () => {
  it('names the time-to-first-byte histogram with its labels, what it measures and its buckets', () => {
    const metrics = readmeSection('Metrics')
    const rows = metrics.split('\n').filter((line) => line.startsWith('| `relay_upstream_time_to_first_byte_seconds` |'))
    assert.equal(rows.length, 1, 'one row')
    assert.match(rows[0] as string, /^\| `relay_upstream_time_to_first_byte_seconds` \| histogram \| `method`, `endpoint` — from the request's arrival to the first byte of the upstream's response body \(for a stream, the first token/)
    const buckets = (RELAY_METRICS.relay_upstream_time_to_first_byte_seconds?.buckets ?? []).filter((b) => b !== '+Inf')
    assert.ok(metrics.includes(`${buckets.slice(0, -1).join(', ')} and ${buckets.at(-1) as string} seconds`), 'the buckets')
  })

  it('the deployment guide says what each alert means and what to do, and how to install the dashboard', () => {
    const guide = readmeSection('Deploying to Kubernetes')
    const start = guide.indexOf('\n### Alerts and dashboard\n')
    assert.ok(start !== -1)
    const part = guide.slice(start, guide.indexOf('\n### ', start + 1))
    for (const name of ALERTS) {
      const row = part.split('\n').find((line) => line.startsWith(`| \`${name}\` (`))
      assert.ok(row !== undefined && row.split('|').length === 5, `${name}: a row with what it means and what to do`)
    }
    for (const text of ['metrics.prometheusRule.labels.release=kube-prometheus-stack', 'metrics.dashboard.enabled=true', 'grafana_dashboard: "1"', 'Import', 'Data source', 'charts/tokenplace-relay/README.md#troubleshooting-the-alerts', 'exported_endpoint']) {
      assert.ok(part.includes(text), text)
    }
    const file = /`(charts\/tokenplace-relay\/dashboards\/[\w.-]+\.json)`/.exec(part)?.[1]
    assert.ok(file !== undefined && existsSync(join(CHART_DIR, '..', '..', file)), 'the dashboard file it names exists')
  })
})
