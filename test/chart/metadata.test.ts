// Chart.yaml follows package.json; README.md lists every value with its default; values.schema.json
// is strict everywhere the chart owns the shape.
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { parse as parseYaml } from 'yaml'
import { readmeSection } from '../helpers/readme.js'
import { CHART_DIR, REPO_ROOT } from '../helpers/chart-helm.js'
import { BEGIN, END, expectedReadme, valueRows } from '../../scripts/chart-readme.js'

const pkg = JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as { version: string }
const chart = parseYaml(readFileSync(join(CHART_DIR, 'Chart.yaml'), 'utf8'))
const valuesYaml = readFileSync(join(CHART_DIR, 'values.yaml'), 'utf8')
const values = parseYaml(valuesYaml)
const schema = JSON.parse(readFileSync(join(CHART_DIR, 'values.schema.json'), 'utf8'))

describe('Chart.yaml', () => {
  it('version and appVersion follow package.json', () => {
    assert.equal(chart.version, pkg.version)
    assert.equal(chart.appVersion, pkg.version)
  })

  it('is a v2 application chart that declares kubeVersion, maintainers, sources, icon and home', () => {
    assert.equal(chart.apiVersion, 'v2')
    assert.equal(chart.name, 'tokenplace-relay')
    assert.equal(chart.type, 'application')
    assert.match(chart.kubeVersion, /^>=1\.\d+\.0-0$/)
    assert.ok(Array.isArray(chart.maintainers) && chart.maintainers.length > 0 && chart.maintainers.every((m: { name?: string }) => typeof m.name === 'string'))
    assert.ok(Array.isArray(chart.sources) && chart.sources.every((s: string) => s.startsWith('https://')))
    assert.match(chart.icon, /^https:\/\/.+\.(svg|png)$/)
    assert.match(chart.home, /^https:\/\//)
  })

  it('the icon it points at is in the repository', () => {
    const path = new URL(chart.icon).pathname.split('/main/')[1]
    assert.ok(path !== undefined, chart.icon)
    assert.match(readFileSync(join(REPO_ROOT, path), 'utf8'), /<svg/)
  })
})

describe('charts/tokenplace-relay/README.md', () => {
  it('is in sync with values.yaml (npm run chart:readme)', () => {
    const { current, expected } = expectedReadme()
    assert.ok(current.includes(BEGIN) && current.includes(END))
    assert.equal(current, expected, 'README.md is out of date: run `npm run chart:readme`')
  })

  it('lists every value of values.yaml with its default and a description', () => {
    const rows = valueRows(valuesYaml, schema)
    const readme = readFileSync(join(CHART_DIR, 'README.md'), 'utf8')
    const documented = new Set(rows.map((r) => r.key))
    // Every key is documented itself, or inside a documented map.
    const walk = (node: Record<string, unknown>, path: string[]): void => {
      for (const [key, value] of Object.entries(node)) {
        const p = [...path, key]
        if (documented.has(p.join('.'))) continue
        assert.ok(value !== null && typeof value === 'object' && !Array.isArray(value), `${p.join('.')} is not in the README`)
        walk(value as Record<string, unknown>, p)
      }
    }
    walk(values, [])
    for (const row of rows) {
      assert.ok(row.description.length > 10, `${row.key} has no real description`)
      assert.ok(readme.includes(`| \`${row.key}\` |`), `${row.key} row`)
      assert.ok(readme.includes(`\`${JSON.stringify(row.default).replace(/\|/g, '\\|')}\``), `${row.key} default`)
    }
  })

  it('shows the install command of the issue', () => {
    const readme = readFileSync(join(CHART_DIR, 'README.md'), 'utf8')
    assert.ok(readme.includes('helm upgrade --install relay ./charts/tokenplace-relay --namespace tokenplace --create-namespace --set image.repository=ghcr.io/your-org/tokenplace-relay --set image.tag=sha-<shortsha>'))
  })
})

describe('values.schema.json', () => {
  /** Objects whose shape belongs to Kubernetes (validated after rendering), not to the chart. */
  const PASS_THROUGH = new Set([
    'podSecurityContext', 'securityContext', 'affinity', 'autoscaling.behavior', 'topologySpreadConstraints[]', 'tolerations[]',
    'networkPolicy.extraIngress[]', 'networkPolicy.extraEgress[]', 'extraEnv[].valueFrom', 'extraVolumes[]', 'extraVolumeMounts[]',
    'metrics.serviceMonitor.relabelings[]', 'metrics.serviceMonitor.metricRelabelings[]', 'global'
  ])

  it('refuses unknown keys in every object the chart defines', () => {
    const resolve = (node: any): any => node?.$ref === undefined ? node : resolve(schema.definitions[node.$ref.replace('#/definitions/', '')])
    const visit = (node: any, path: string): void => {
      node = resolve(node)
      if (node === undefined) return
      for (const alt of node.anyOf ?? []) visit(alt, path)
      if (node.items !== undefined) visit(node.items, `${path}[]`)
      const isObject = node.type === 'object' || node.properties !== undefined
      if (!isObject || PASS_THROUGH.has(path)) return
      if (node.additionalProperties !== undefined && typeof node.additionalProperties === 'object') {
        visit(node.additionalProperties, `${path}{}`)
        return
      }
      assert.equal(node.additionalProperties, false, `${path || '(root)'} must set additionalProperties: false`)
      for (const [key, child] of Object.entries(node.properties ?? {})) visit(child, path === '' ? key : `${path}.${key}`)
    }
    visit(schema, '')
  })

  it('describes every value of values.yaml (and no value it lacks, except global)', () => {
    const resolve = (node: any): any => node?.$ref === undefined ? node : resolve(schema.definitions[node.$ref.replace('#/definitions/', '')])
    const check = (valueNode: Record<string, unknown>, schemaNode: any, path: string): void => {
      const s = resolve(schemaNode)
      if (s.properties === undefined) return
      for (const [key, value] of Object.entries(valueNode)) {
        assert.ok(key in s.properties, `${path}${key} is missing from values.schema.json`)
        if (value !== null && typeof value === 'object' && !Array.isArray(value)) check(value as Record<string, unknown>, s.properties[key], `${path}${key}.`)
      }
      if (path === '') {
        const extra = Object.keys(s.properties).filter((k) => !(k in valueNode) && k !== 'global')
        assert.deepEqual(extra, [], 'schema properties with no default in values.yaml')
      }
    }
    check(values, schema, '')
  })
})

describe('the README\'s deployment guide', () => {
  const guide = readmeSection('Deploying to Kubernetes')

  it('has the install command, the DNS check and the GPU host start command of the issue', () => {
    assert.ok(guide.includes('helm upgrade --install relay ./charts/tokenplace-relay --namespace tokenplace --create-namespace --set image.repository=ghcr.io/your-org/tokenplace-relay --set image.tag=sha-<shortsha>'))
    assert.match(guide, /kubectl run -n tokenplace dns-test --rm -it --image=\S+ --restart=Never --command -- nslookup gpu-server/)
    assert.ok(guide.includes('python server.py --host 0.0.0.0 --port 5010'))
  })

  it('covers the modes, the Windows host and the troubleshooting topics', () => {
    for (const topic of ['ExternalName', 'headless', 'Python 3.11', 'Firewall', 'DNS record', 'Task Scheduler', 'NSSM', 'Readiness probe failing', 'NetworkPolicy blocking', 'TLS issues']) {
      assert.ok(guide.includes(topic), topic)
    }
  })

  it('names only values that exist in values.yaml', () => {
    const rows = valueRows(valuesYaml, schema).map((r) => r.key)
    const known = (key: string): boolean => rows.some((row) => key === row || key.startsWith(`${row}.`) || row.startsWith(`${key}.`))
    const mentioned = [...guide.matchAll(/`((?:image|relay|upstream|gpuExternalName|service|ingress|networkPolicy|metrics|autoscaling|podDisruptionBudget|startupProbe|livenessProbe|readinessProbe|serviceAccount|helmTest)\.[A-Za-z.]+)(?=[`=,\s])/g)]
      .map((m) => (m[1] as string).replace(/\.$/, ''))
      .filter((key) => !/\.(com|org|net|place)$/.test(key)) // host names such as relay.example.com
    assert.ok(mentioned.length > 10)
    for (const key of mentioned) assert.ok(known(key), `the deployment guide mentions ${key}, which values.yaml lacks`)
  })

  it('documents every value issue 13 added', () => {
    for (const key of [
      'upstream.ca.existingConfigMap', 'upstream.ca.existingSecret', 'upstream.ca.key', 'extraVolumes', 'extraVolumeMounts',
      'metrics.serviceMonitor.namespace', '.jobLabel', '.honorLabels', '.relabelings', '.metricRelabelings', 'helmTest.upstreamPath'
    ]) {
      assert.ok(guide.includes(`\`${key}\``), key)
    }
  })

  it('documents every value issue 11 added, a relay.limits example and the Redis Secret', () => {
    for (const key of [
      'relay.limits.maxConcurrent', '.queueLimit', '.queueTimeoutSeconds', 'relay.limits.maxConcurrentPerClient', '.rateLimit', '.rateLimitWindowSeconds',
      'relay.limits.maxEventLoopDelayMs', 'redis.existingSecret', 'redis.key', 'redis.port', 'networkPolicy.redisPeers'
    ]) {
      assert.ok(guide.includes(`\`${key}\``), key)
    }
    const example = /```yaml\n# relay-values\.yaml\n([\s\S]*?)```/.exec(guide)?.[1]
    assert.ok(example !== undefined, 'the values file of the guide')
    const limits = parseYaml(example).relay?.limits as Record<string, unknown> | undefined
    assert.deepEqual(limits, values.relay.limits, 'its relay.limits shows the chart\'s defaults, every one')
    assert.ok(guide.includes('kubectl -n tokenplace create secret generic relay-redis --from-literal=url=\'redis://:PASSWORD@redis-master.redis:6379\''))
    assert.ok(guide.includes('--set redis.existingSecret=relay-redis'))
  })

  it('the Overload protection section points at the chart\'s relay.limits, and the chart README explains each default', () => {
    const overload = readmeSection('Overload protection')
    assert.ok(overload.includes('the chart turns them on, see its\n[`relay.limits`](charts/tokenplace-relay/README.md#overload-protection)'))
    const chartReadme = readFileSync(join(CHART_DIR, 'README.md'), 'utf8')
    const section = chartReadme.slice(chartReadme.indexOf('\n## Overload protection\n'), chartReadme.indexOf('\n## Values\n'))
    assert.ok(section.length > 100, 'the chart README has an Overload protection section before its values')
    for (const [key, value] of Object.entries(values.relay.limits as Record<string, number>)) {
      const row = section.split('\n').find((line) => line.startsWith(`| \`relay.limits.${key}\``) || line.startsWith(`| \`relay.limits.rateLimit\`, \`relay.limits.${key}\``))
      assert.ok(row !== undefined, `a row for relay.limits.${key}`)
      assert.ok(row.includes(`\`${value}\``), `relay.limits.${key}: the default ${value}, as values.yaml has it: ${row}`)
    }
  })

  it('says which name an https GPU server\'s certificate must carry', () => {
    const https = guide.slice(guide.indexOf('### An https GPU server'), guide.indexOf('\n### ', guide.indexOf('### An https GPU server') + 1))
    assert.match(https, /the certificate must carry\s+exactly that name/)
    assert.match(https, /host written in `upstream\.url`/)
    assert.ok(https.includes('NODE_EXTRA_CA_CERTS'))
  })
})

describe('installing from the registry', () => {
  // Where release.yml pushes the chart: oci://ghcr.io/${GITHUB_REPOSITORY_OWNER,,}/charts + the chart's name.
  const release = readFileSync(join(REPO_ROOT, '.github/workflows/release.yml'), 'utf8')
  const pushTarget = /scripts\/helm push \S+ "oci:\/\/ghcr\.io\/\$\{GITHUB_REPOSITORY_OWNER,,\}\/(\S+)"/.exec(release)?.[1]
  const reference = `oci://ghcr.io/<owner>/${pushTarget ?? '?'}/${chart.name as string}`
  const install = `helm upgrade --install relay ${reference} --version <version> --namespace tokenplace --create-namespace`

  it('release.yml pushes the chart to oci://ghcr.io/<owner>/charts', () => {
    assert.equal(pushTarget, 'charts')
  })

  it('both READMEs show the registry install command beside the checkout one', () => {
    const chartReadme = readFileSync(join(CHART_DIR, 'README.md'), 'utf8')
    for (const [name, text] of [['README.md', readmeSection('Deploying to Kubernetes')], ['the chart README', chartReadme]] as const) {
      assert.ok(text.includes(install), `${name} shows ${install}`)
      assert.ok(text.includes('helm upgrade --install relay ./charts/tokenplace-relay --namespace tokenplace --create-namespace'), `${name} keeps the checkout form`)
    }
  })
})
