// Every rendered object, for every value set, example and supported Kubernetes minor, is checked
// against the Kubernetes OpenAPI schemas (and the ServiceMonitor and PrometheusRule CRD schemas), and
// every pod against the Pod Security Standards "restricted" profile.
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { parse as parseYaml } from 'yaml'
import { CHART_DIR, render, renderError, type Rendered } from '../helpers/chart-helm.js'
import { EXAMPLE_FILES, MATRIX, REAL_VALUES, SUPPORTED_MINORS } from '../helpers/chart-cases.js'
import { checkNamesAndLabels, podSpecsOf, restrictedViolations, validateObject } from '../helpers/chart-k8s.js'

function checkAll (r: Rendered): void {
  assert.ok(r.objects.length > 0, 'nothing rendered')
  for (const object of r.objects) {
    validateObject(object)
    checkNamesAndLabels(object)
    for (const spec of podSpecsOf(object)) {
      assert.deepEqual(restrictedViolations(spec), [], `${object.kind} ${object.metadata.name} breaks the restricted Pod Security Standard`)
    }
  }
}

describe('rendered objects match the Kubernetes schemas', { concurrency: true }, () => {
  for (const c of MATRIX) {
    it(c.name, async () => {
      checkAll(await render(c.values, c.options))
    })
  }

  for (const file of EXAMPLE_FILES) {
    it(`examples/${file}`, async () => {
      checkAll(await render({}, { args: ['-f', join(CHART_DIR, 'examples', file)] }))
    })
  }
})

describe('each Kubernetes minor the chart supports', { concurrency: true }, () => {
  const chart = parseYaml(readFileSync(join(CHART_DIR, 'Chart.yaml'), 'utf8')) as { kubeVersion: string }

  it('matches Chart.yaml kubeVersion', () => {
    assert.equal(chart.kubeVersion, `>=1.${SUPPORTED_MINORS[0]}.0-0`)
  })

  // Every optional kind on at once (the ExternalName Service is covered by the matrix above).
  const everything = {
    ...REAL_VALUES,
    gpuExternalName: { headless: { enabled: true, endpoints: ['192.168.1.50'] } },
    metrics: { serviceMonitor: { enabled: true }, prometheusRule: { enabled: true }, dashboard: { enabled: true } },
    autoscaling: { enabled: true }
  }
  for (const minor of SUPPORTED_MINORS) {
    it(`1.${minor}`, async () => {
      // k3s reports versions like v1.31.4+k3s1.
      const r = await render(everything, { kubeVersion: `v1.${minor}.4+k3s1` })
      checkAll(r)
      for (const kind of ['Deployment', 'Service', 'ServiceAccount', 'EndpointSlice', 'Ingress', 'NetworkPolicy', 'HorizontalPodAutoscaler', 'PodDisruptionBudget', 'ServiceMonitor', 'PrometheusRule', 'ConfigMap', 'Pod']) {
        assert.ok(r.has(kind), `${kind} rendered on 1.${minor}`)
      }
      // unhealthyPodEvictionPolicy is beta (on by default) from 1.27; older API servers would drop it.
      assert.equal(r.one('PodDisruptionBudget').spec.unhealthyPodEvictionPolicy, minor >= 27 ? 'AlwaysAllow' : undefined)
    })
  }

  it(`refuses Kubernetes 1.${SUPPORTED_MINORS[0] as number - 1}`, async () => {
    const error = await renderError({}, { kubeVersion: `1.${SUPPORTED_MINORS[0] as number - 1}.9` })
    assert.match(error, /chart requires kubeVersion: >=1\.25\.0-0 which is incompatible with Kubernetes v1\.24\.9/)
  })
})

describe('the schema check itself', () => {
  it('rejects broken objects of each kind the chart renders (so a green run means something)', async () => {
    const r = await render({
      ...REAL_VALUES,
      replicaCount: 2,
      metrics: { serviceMonitor: { enabled: true }, prometheusRule: { enabled: true }, dashboard: { enabled: true } },
      autoscaling: { enabled: true },
      gpuExternalName: { headless: { enabled: true, endpoints: ['192.168.1.50'] } }
    })
    const breakages: Record<string, (o: any) => void> = {
      Deployment: (o) => { o.spec.template.spec.containers[0].ports[0].containerPort = '5010' },
      Service: (o) => { o.spec.ports[0].port = 'http' },
      ServiceAccount: (o) => { o.automountServiceAccountToken = 'no' },
      Ingress: (o) => { o.spec.rules[0].http.paths[0].backend.service.port = 5010 },
      NetworkPolicy: (o) => { o.spec.policyTypes = 'Ingress' },
      HorizontalPodAutoscaler: (o) => { delete o.spec.maxReplicas },
      PodDisruptionBudget: (o) => { o.spec.selector = 'relay' },
      ServiceMonitor: (o) => { o.spec.endpoints = {} },
      PrometheusRule: (o) => { delete o.spec.groups[0].name },
      ConfigMap: (o) => { o.data['tokenplace-relay.json'] = { panels: [] } },
      EndpointSlice: (o) => { delete o.addressType },
      Pod: (o) => { delete o.spec.containers[0].name }
    }
    for (const object of r.objects) {
      const breakIt = breakages[object.kind]
      assert.ok(breakIt !== undefined, `no breakage defined for ${object.kind}`)
      const broken = structuredClone(object)
      breakIt(broken)
      assert.throws(() => { validateObject(broken) }, /does not match its schema/, `${object.kind} ${object.metadata.name}`)
    }
    assert.throws(() => { validateObject({ apiVersion: 'v1', kind: 'Secret', metadata: { name: 'x' } }) }, /no schema known for v1\/Secret/)
  })
})
