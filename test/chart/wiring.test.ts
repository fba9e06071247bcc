// No dead values: changing any value in values.yaml changes what the chart renders. The table below
// must name every value (leaf) of values.yaml, so a value added without wiring, or without a test,
// fails here. Where each value lands is asserted in render.test.ts.
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { isDeepStrictEqual } from 'node:util'
import { parse as parseYaml } from 'yaml'
import { CHART_DIR, render } from '../helpers/chart-helm.js'
import { DIGEST } from '../helpers/chart-cases.js'

interface Mutation {
  /** The new value for the path. */
  value: unknown
  /** Values both renders get (e.g. enabling the feature the path belongs to). */
  base?: object
  /** Values only the changed render gets, when the new value needs a companion to be valid. */
  also?: object
}

const PEER = [{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'edge' } }, podSelector: { matchLabels: { app: 'proxy' } } }]
const HEADLESS = { gpuExternalName: { headless: { enabled: true, endpoints: ['192.168.1.50'] } } }
const SERVICE_MONITOR = { metrics: { serviceMonitor: { enabled: true } } }
const HPA = { autoscaling: { enabled: true } }
const PDB = { replicaCount: 2 }

const MUTATIONS: Record<string, Mutation> = {
  nameOverride: { value: 'edge' },
  fullnameOverride: { value: 'tp-relay' },
  'image.repository': { value: 'registry.lan:5000/relay' },
  'image.tag': { value: 'sha-abc1234' },
  'image.digest': { value: DIGEST },
  'image.pullPolicy': { value: 'Always' },
  imagePullSecrets: { value: [{ name: 'pull' }] },
  'relay.port': { value: 8080 },
  'relay.workers': { value: 1 },
  'relay.logLevel': { value: 'DEBUG' },
  'relay.upstreamTimeoutSeconds': { value: 600 },
  'relay.bodyLimitBytes': { value: 1048576 },
  'relay.shutdownDelaySeconds': { value: 10 },
  'relay.shutdownTimeoutSeconds': { value: 30 },
  'relay.trustProxy': { value: ['10.42.0.0/16'] },
  'relay.metricsToken.existingSecret': { value: 'relay-metrics' },
  'relay.metricsToken.key': { value: 'bearer', base: { relay: { metricsToken: { existingSecret: 'relay-metrics' } } } },
  extraEnv: { value: [{ name: 'RELAY_METRICS_MAX_ENDPOINTS', value: '10' }] },
  'upstream.url': { value: 'http://gpu-server:5010/v1' },
  'gpuExternalName.enabled': { value: false },
  'gpuExternalName.name': { value: 'gpu', also: { upstream: { url: 'http://gpu:5010' } } },
  'gpuExternalName.host': { value: 'gpu-box.lan' },
  'gpuExternalName.port': { value: 8000, also: { upstream: { url: 'http://gpu-server:8000' } } },
  'gpuExternalName.headless.enabled': { value: true, also: { gpuExternalName: { headless: { endpoints: ['192.168.1.50'] } } } },
  'gpuExternalName.headless.endpoints': { value: ['192.168.1.51'], base: HEADLESS },
  'gpuExternalName.headless.legacyEndpoints': { value: true, base: HEADLESS },
  'service.type': { value: 'NodePort' },
  'service.port': { value: 80 },
  'service.annotations': { value: { a: 'b' } },
  'ingress.enabled': { value: false },
  'ingress.className': { value: 'nginx' },
  'ingress.annotations.cert-manager.io/cluster-issuer': { value: 'letsencrypt-staging' },
  'ingress.hosts': { value: [{ host: 'relay.example.com', paths: [{ path: '/v1', pathType: 'Prefix' }] }] },
  'ingress.tls': { value: [{ secretName: 'other-tls', hosts: ['relay.example.com'] }] },
  'networkPolicy.enabled': { value: false },
  'networkPolicy.egressCidrs': { value: ['192.168.1.50/32'] },
  'networkPolicy.allowDns': { value: false },
  'networkPolicy.dnsPeers': { value: PEER },
  'networkPolicy.traefikPeers': { value: PEER },
  'networkPolicy.prometheusPeers': { value: PEER, base: SERVICE_MONITOR },
  'networkPolicy.extraIngress': { value: [{ from: PEER }] },
  'networkPolicy.extraEgress': { value: [{ to: PEER }] },
  'metrics.serviceMonitor.enabled': { value: true },
  'metrics.serviceMonitor.labels': { value: { release: 'prom' }, base: SERVICE_MONITOR },
  'metrics.serviceMonitor.interval': { value: '1m', base: SERVICE_MONITOR },
  'metrics.serviceMonitor.scrapeTimeout': { value: '5s', base: SERVICE_MONITOR },
  'resources.requests.cpu': { value: '100m' },
  'resources.requests.memory': { value: '200Mi' },
  'resources.limits.cpu': { value: '1' },
  'resources.limits.memory': { value: '1Gi' },
  'podSecurityContext.runAsNonRoot': { value: false },
  'podSecurityContext.runAsUser': { value: 2000 },
  'podSecurityContext.runAsGroup': { value: 2000 },
  'podSecurityContext.fsGroup': { value: 2000 },
  'podSecurityContext.seccompProfile.type': { value: 'Unconfined' },
  'securityContext.allowPrivilegeEscalation': { value: true },
  'securityContext.readOnlyRootFilesystem': { value: false },
  'securityContext.runAsNonRoot': { value: false },
  'securityContext.runAsUser': { value: 2000 },
  'securityContext.runAsGroup': { value: 2000 },
  'securityContext.capabilities.drop': { value: ['NET_RAW'] },
  'startupProbe.periodSeconds': { value: 3 },
  'startupProbe.timeoutSeconds': { value: 3 },
  'startupProbe.failureThreshold': { value: 10 },
  'livenessProbe.periodSeconds': { value: 30 },
  'livenessProbe.timeoutSeconds': { value: 5 },
  'livenessProbe.failureThreshold': { value: 5 },
  'readinessProbe.periodSeconds': { value: 10 },
  'readinessProbe.timeoutSeconds': { value: 5 },
  'readinessProbe.failureThreshold': { value: 5 },
  'readinessProbe.successThreshold': { value: 2 },
  terminationGracePeriodSeconds: { value: 90 },
  replicaCount: { value: 2 },
  revisionHistoryLimit: { value: 10 },
  'autoscaling.enabled': { value: true },
  'autoscaling.minReplicas': { value: 1, base: HPA },
  'autoscaling.maxReplicas': { value: 8, base: HPA },
  'autoscaling.targetCPUUtilizationPercentage': { value: 60, base: HPA },
  'autoscaling.targetMemoryUtilizationPercentage': { value: 60, base: HPA },
  'autoscaling.behavior': { value: { scaleUp: { stabilizationWindowSeconds: 0 } }, base: HPA },
  'podDisruptionBudget.enabled': { value: false, base: PDB },
  'podDisruptionBudget.maxUnavailable': { value: '50%', base: PDB },
  'podDisruptionBudget.minAvailable': { value: 1, base: PDB },
  'podDisruptionBudget.unhealthyPodEvictionPolicy': { value: 'IfHealthyBudget', base: PDB },
  topologySpreadConstraints: { value: [] },
  affinity: { value: { podAntiAffinity: { preferredDuringSchedulingIgnoredDuringExecution: [{ weight: 1, podAffinityTerm: { topologyKey: 'kubernetes.io/hostname' } }] } } },
  nodeSelector: { value: { 'kubernetes.io/arch': 'arm64' } },
  tolerations: { value: [{ key: 'k', operator: 'Exists' }] },
  priorityClassName: { value: 'high' },
  podAnnotations: { value: { a: 'b' } },
  podLabels: { value: { team: 'platform' } },
  'serviceAccount.create': { value: false },
  'serviceAccount.name': { value: 'relay-sa' },
  'serviceAccount.annotations': { value: { a: 'b' } }
}

/** Leaf paths of values.yaml: scalars, lists, nulls and empty maps (non-empty maps are descended into). */
function leafPaths (node: Record<string, unknown>, prefix: string[] = []): string[][] {
  return Object.entries(node).flatMap(([key, value]) => {
    const path = [...prefix, key]
    const isMap = value !== null && typeof value === 'object' && !Array.isArray(value)
    return isMap && Object.keys(value).length > 0 ? leafPaths(value as Record<string, unknown>, path) : [path]
  })
}

function setPath (path: string[], value: unknown): object {
  return path.reduceRight<unknown>((inner, key) => ({ [key]: inner }), value) as object
}

function mergeValues (a: any, b: any): any {
  if (a === null || b === null || typeof a !== 'object' || typeof b !== 'object' || Array.isArray(a) || Array.isArray(b)) return b
  const out = { ...a }
  for (const [k, v] of Object.entries(b)) out[k] = k in a ? mergeValues(a[k], v) : v
  return out
}

const defaults = parseYaml(readFileSync(join(CHART_DIR, 'values.yaml'), 'utf8'))
const leaves = leafPaths(defaults)

describe('every value is wired', { concurrency: true }, () => {
  it('the table names every value of values.yaml, and nothing else', () => {
    assert.deepEqual(Object.keys(MUTATIONS).sort(), leaves.map((p) => p.join('.')).sort())
  })

  for (const path of leaves) {
    const key = path.join('.')
    it(key, async () => {
      const mutation = MUTATIONS[key]
      assert.ok(mutation !== undefined, `no mutation for ${key}`)
      const base = mutation.base ?? {}
      const changed = mergeValues(mergeValues(base, mutation.also ?? {}), setPath(path, mutation.value))
      const [before, after] = await Promise.all([render(base), render(changed)])
      assert.ok(!isDeepStrictEqual(before.objects, after.objects), `setting ${key}=${JSON.stringify(mutation.value)} changed nothing in the rendered objects`)
    })
  }
})
