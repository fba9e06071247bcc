// Every list value of the chart, emptied the three ways an operator empties it: `key: null` in a values
// file (Helm then drops the key), `key: []`, and `--set key={}` (which Helm turns into [""]). Each must
// render, or be refused with the chart's own sentence: never a template crash or a raw schema pattern.
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { CHART_DIR, helm, NAMESPACE, parseObjects, RELEASE, render, renderError, Rendered } from '../helpers/chart-helm.js'
import { REAL_VALUES } from '../helpers/chart-cases.js'
import { checkNamesAndLabels, validateObject } from '../helpers/chart-k8s.js'
import { valueRows } from '../../scripts/chart-readme.js'

const valuesYaml = readFileSync(join(CHART_DIR, 'values.yaml'), 'utf8')
const schema = JSON.parse(readFileSync(join(CHART_DIR, 'values.schema.json'), 'utf8'))
const LIST_KEYS = valueRows(valuesYaml, schema).filter((row) => Array.isArray(row.default)).map((row) => row.key)

/** Real values with every optional part on, so each list is used by some template. */
const BASE = { ...REAL_VALUES, metrics: { serviceMonitor: { enabled: true }, prometheusRule: { enabled: true }, dashboard: { enabled: true } } }

/** Lists that must not be empty where they are used, and the sentence that says so. */
const REFUSED: Record<string, RegExp> = {
  'ingress.hosts': /ingress\.enabled=true but ingress\.hosts is empty: add a host/,
  'ingress.tls': /ingress\.enabled=true without ingress\.tls: the relay would be served over plain HTTP/,
  'metrics.prometheusRule.alerts.RelayOverloaded.reasons': /metrics\.prometheusRule\.alerts\.RelayOverloaded\.reasons is empty, so RelayOverloaded would count no rejection: list reasons \(queue_full, queue_timeout, overloaded, client_concurrency, rate_limit\), or set metrics\.prometheusRule\.alerts\.RelayOverloaded\.enabled=false/,
  'networkPolicy.egressCidrs': /nothing lets the relay reach the GPU host: set networkPolicy\.egressCidrs to its address, e\.g\. --set networkPolicy\.egressCidrs=\{192\.168\.1\.50\/32\}\. The list is empty, and in ExternalName mode the relay connects on port 5010 to whatever address gpu-box\.lan\.token\.place resolves to, which the chart cannot know/
}

function withValue (values: object, key: string, value: unknown): object {
  const copy = structuredClone(values) as Record<string, any>
  const path = key.split('.')
  let node = copy
  for (const part of path.slice(0, -1)) {
    node[part] = { ...(node[part] ?? {}) }
    node = node[part]
  }
  node[path.at(-1) as string] = value
  return copy
}

const CRASH = /nil pointer|error calling|can't evaluate|wrong type|executing "/

async function attempt (values: object, args: string[] = []): Promise<{ ok: true, rendered: Rendered } | { ok: false, error: string }> {
  const result = await helm(['template', RELEASE, CHART_DIR, '--namespace', NAMESPACE, '-f', '-', ...args], JSON.stringify(values))
  return result.code === 0 ? { ok: true, rendered: new Rendered(parseObjects(result.stdout)) } : { ok: false, error: result.stderr }
}

describe('empty lists', { concurrency: true }, () => {
  it('finds the chart\'s list values', () => {
    for (const key of ['networkPolicy.egressCidrs', 'networkPolicy.traefikPeers', 'ingress.hosts', 'extraEnv', 'tolerations']) assert.ok(LIST_KEYS.includes(key), key)
  })

  for (const key of LIST_KEYS) {
    for (const [how, values, args] of [
      ['null', withValue(BASE, key, null), []],
      ['[]', withValue(BASE, key, []), []],
      ['--set {}', BASE, ['--set', `${key}={}`]]
    ] as Array<[string, object, string[]]>) {
      it(`${key} as ${how}`, async () => {
        const result = await attempt(values, args)
        if (REFUSED[key] !== undefined) {
          assert.equal(result.ok, false, `${key} empty must be refused`)
          if (!result.ok) {
            assert.doesNotMatch(result.error, CRASH)
            assert.doesNotMatch(result.error, /values don't meet the specifications of the schema/)
            assert.match(result.error, REFUSED[key])
          }
          return
        }
        assert.ok(result.ok, result.ok ? '' : result.error)
        for (const object of result.rendered.objects) {
          validateObject(object)
          checkNamesAndLabels(object)
        }
        // No list turns into an empty entry or a null in what is rendered.
        assert.doesNotMatch(JSON.stringify(result.rendered.objects), /:""[,}]|\[""\]|:null[,}]/)
      })
    }
  }
})

describe('empty lists where they matter', { concurrency: true }, () => {
  it('headless mode with egressCidrs null or {}: the NetworkPolicy allows exactly the endpoint IPs', async () => {
    const headless = { ...REAL_VALUES, gpuExternalName: { headless: { enabled: true, endpoints: ['192.168.1.50', '192.168.1.51'] } } }
    const [asNull, asSet] = await Promise.all([
      render(withValue(headless, 'networkPolicy.egressCidrs', null)),
      render(headless, { args: ['--set', 'networkPolicy.egressCidrs={}'] })
    ])
    for (const r of [asNull, asSet]) {
      assert.deepEqual(r.one('NetworkPolicy').spec.egress[0], {
        to: [{ ipBlock: { cidr: '192.168.1.50/32' } }, { ipBlock: { cidr: '192.168.1.51/32' } }],
        ports: [{ port: 5010, protocol: 'TCP' }]
      })
    }
  })

  it('an empty peer list admits nobody: its rule is left out, never rendered without peers (which would admit everybody)', async () => {
    const r = await render(withValue(withValue(withValue(BASE, 'networkPolicy.traefikPeers', null), 'networkPolicy.prometheusPeers', []), 'networkPolicy.dnsPeers', null))
    const np = r.one('NetworkPolicy').spec
    assert.deepEqual(np.ingress.map((rule: any) => rule.from[0].podSelector.matchLabels['app.kubernetes.io/component']), ['test'], 'only the test pod is admitted')
    for (const rule of [...np.ingress, ...np.egress]) assert.ok((rule.from ?? rule.to)?.length > 0, JSON.stringify(rule))
    assert.deepEqual(np.egress.map((rule: any) => rule.ports[0].port), [5010], 'no DNS rule without DNS peers')
  })

  it('an empty list from --set {} renders nothing for it: no env var, no pull secret, no toleration', async () => {
    const r = await render({ relay: { trustProxy: ['10.42.0.0/16'] }, imagePullSecrets: [{ name: 'ghcr-pull' }], tolerations: [{ operator: 'Exists' }] }, {
      args: ['--set', 'relay.trustProxy={}', '--set', 'imagePullSecrets={}', '--set', 'tolerations={}', '--set', 'extraEnv={}', '--set', 'topologySpreadConstraints={}']
    })
    assert.equal(r.env.RELAY_TRUST_PROXY, undefined)
    for (const key of ['imagePullSecrets', 'tolerations', 'topologySpreadConstraints']) assert.equal(r.podSpec[key], undefined, key)
    assert.equal(r.one('Pod').spec.imagePullSecrets, undefined)
  })

  it('ExternalName mode refuses an empty egressCidrs with a sentence, also when upstream.url bypasses the GPU Service', async () => {
    const error = await renderError({ ...REAL_VALUES, upstream: { url: 'https://gpu-box.lan.token.place:8443' } }, { args: ['--set', 'networkPolicy.egressCidrs={}'] })
    assert.match(error, /nothing lets the relay reach the GPU host: set networkPolicy\.egressCidrs to its address.* upstream\.url names gpu-box\.lan\.token\.place \(port 8443\), not the GPU Service/)
  })
})
