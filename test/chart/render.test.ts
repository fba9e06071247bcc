// `helm template` for the matrix of issue 3, with assertions that every value lands where it should.
// The last test checks that every documented value is set to a non-default value by some test here.
import { describe, it, before } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { parse as parseYaml } from 'yaml'
import { isDeepStrictEqual } from 'node:util'
import {
  CHART_DIR, ISSUE_INSTALL_SET_ARGS, NAMESPACE, RELEASE, render as renderChart, selects, type K8sObject, type RenderOptions, type Rendered
} from '../helpers/chart-helm.js'
import { DIGEST, REAL_VALUES } from '../helpers/chart-cases.js'
import { valueRows } from '../../scripts/chart-readme.js'

// Every value set rendered in this file, so the last test can check that each documented value was
// given a non-default value (and so has assertions on where it lands) somewhere above.
const renderedValues: object[] = []
async function render (values: object = {}, options?: RenderOptions): Promise<Rendered> {
  renderedValues.push(values)
  return await renderChart(values, options)
}

const chart = parseYaml(readFileSync(join(CHART_DIR, 'Chart.yaml'), 'utf8')) as { version: string, appVersion: string }
const FULLNAME = `${RELEASE}-tokenplace-relay`
const SELECTOR = {
  'app.kubernetes.io/name': 'tokenplace-relay',
  'app.kubernetes.io/instance': RELEASE,
  'app.kubernetes.io/component': 'relay'
}

function gpuService (r: Rendered): K8sObject {
  return r.one('Service', 'gpu-server')
}

describe('defaults: the install command of the issue', () => {
  let r: Rendered
  before(async () => { r = await render({}, { args: ISSUE_INSTALL_SET_ARGS }) })

  it('renders the relay, its Service and ServiceAccount, the GPU Service, Ingress, NetworkPolicy and test pod', () => {
    const kinds = r.objects.map((o) => `${o.kind}/${o.metadata.name}`).sort()
    assert.deepEqual(kinds, [
      `Deployment/${FULLNAME}`,
      `Ingress/${FULLNAME}`,
      `NetworkPolicy/${FULLNAME}`,
      `Pod/${FULLNAME}-test-healthz`,
      'Service/gpu-server',
      `Service/${FULLNAME}`,
      `ServiceAccount/${FULLNAME}`
    ])
  })

  it('puts every object in the release namespace with the recommended labels', () => {
    for (const o of r.objects) {
      assert.equal(o.metadata.namespace, NAMESPACE, `${o.kind} ${o.metadata.name}`)
      const labels = o.metadata.labels ?? {}
      assert.equal(labels['helm.sh/chart'], `tokenplace-relay-${chart.version}`)
      assert.equal(labels['app.kubernetes.io/name'], 'tokenplace-relay')
      assert.equal(labels['app.kubernetes.io/instance'], RELEASE)
      assert.equal(labels['app.kubernetes.io/managed-by'], 'Helm')
      assert.equal(labels['app.kubernetes.io/part-of'], 'tokenplace')
      assert.equal(labels['app.kubernetes.io/version'], 'sha-abc1234')
      assert.ok(['relay', 'gpu-upstream', 'test'].includes(labels['app.kubernetes.io/component'] ?? ''), `${o.kind} ${o.metadata.name} component`)
    }
  })

  it('runs image.repository:image.tag with image.pullPolicy', () => {
    assert.equal(r.container.image, 'ghcr.io/your-org/tokenplace-relay:sha-abc1234')
    assert.equal(r.container.imagePullPolicy, 'IfNotPresent')
  })

  it('sets the relay env vars from relay.* and upstream.url, with no empty value', () => {
    assert.deepEqual(r.env, {
      RELAY_PORT: '5010',
      RELAY_WORKERS: '1',
      RELAY_LOG_LEVEL: 'INFO',
      UPSTREAM_URL: 'http://gpu-server:5010',
      RELAY_UPSTREAM_TIMEOUT_SECONDS: '300',
      RELAY_BODY_LIMIT_BYTES: '10485760',
      RELAY_SHUTDOWN_DELAY_SECONDS: '5',
      RELAY_SHUTDOWN_TIMEOUT_SECONDS: '20',
      // relay.limits: on by default in the chart, off in the relay itself.
      RELAY_MAX_CONCURRENT: '4',
      RELAY_QUEUE_LIMIT: '20',
      RELAY_QUEUE_TIMEOUT_SECONDS: '30',
      RELAY_MAX_CONCURRENT_PER_CLIENT: '2',
      RELAY_RATE_LIMIT: '60',
      RELAY_RATE_LIMIT_WINDOW_SECONDS: '60',
      RELAY_MAX_EVENT_LOOP_DELAY_MS: '500'
    })
  })

  it('exposes relay.port as the container port named http', () => {
    assert.deepEqual(r.container.ports, [{ name: 'http', containerPort: 5010, protocol: 'TCP' }])
  })

  it('probes /healthz (readiness), /livez (liveness, startup) on the named port http', () => {
    const c = r.container
    assert.deepEqual(c.readinessProbe.httpGet, { path: '/healthz', port: 'http' })
    assert.deepEqual(c.livenessProbe.httpGet, { path: '/livez', port: 'http' })
    assert.deepEqual(c.startupProbe.httpGet, { path: '/livez', port: 'http' })
    assert.deepEqual({ ...c.startupProbe, httpGet: undefined }, { httpGet: undefined, periodSeconds: 2, timeoutSeconds: 2, failureThreshold: 30 })
    assert.deepEqual({ ...c.livenessProbe, httpGet: undefined }, { httpGet: undefined, periodSeconds: 10, timeoutSeconds: 3, failureThreshold: 3 })
    assert.deepEqual({ ...c.readinessProbe, httpGet: undefined }, { httpGet: undefined, periodSeconds: 5, timeoutSeconds: 3, failureThreshold: 2, successThreshold: 1 })
  })

  it('has no preStop hook and a grace period longer than the relay\'s shutdown delay + timeout', () => {
    assert.equal(r.container.lifecycle, undefined)
    assert.equal(r.podSpec.terminationGracePeriodSeconds, 40)
    assert.ok(r.podSpec.terminationGracePeriodSeconds > 5 + 20)
  })

  it('uses the Raspberry Pi 5 resources of the issue', () => {
    assert.deepEqual(r.container.resources, { requests: { cpu: '150m', memory: '256Mi' }, limits: { cpu: '500m', memory: '512Mi' } })
  })

  it('hardens the pod: non-root uid/gid 1000, RuntimeDefault seccomp, no escalation, no capabilities, read-only root, /tmp emptyDir', () => {
    const spec = r.podSpec
    assert.deepEqual(spec.securityContext, {
      runAsNonRoot: true, runAsUser: 1000, runAsGroup: 1000, fsGroup: 1000, seccompProfile: { type: 'RuntimeDefault' }
    })
    assert.deepEqual(r.container.securityContext, {
      allowPrivilegeEscalation: false,
      readOnlyRootFilesystem: true,
      runAsNonRoot: true,
      runAsUser: 1000,
      runAsGroup: 1000,
      capabilities: { drop: ['ALL'] }
    })
    assert.deepEqual(r.container.volumeMounts, [{ name: 'tmp', mountPath: '/tmp' }])
    assert.deepEqual(spec.volumes, [{ name: 'tmp', emptyDir: { sizeLimit: '64Mi' } }])
    assert.equal(spec.automountServiceAccountToken, false)
    assert.equal(spec.enableServiceLinks, false)
  })

  it('uses the chart\'s ServiceAccount, which mounts no token', () => {
    assert.equal(r.podSpec.serviceAccountName, FULLNAME)
    const sa = r.one('ServiceAccount')
    assert.equal(sa.metadata.name, FULLNAME)
    assert.equal(sa.automountServiceAccountToken, false)
  })

  it('runs replicaCount replicas, keeps revisionHistoryLimit ReplicaSets, rolls with maxUnavailable 0', () => {
    const spec = r.deployment.spec
    assert.equal(spec.replicas, 1)
    assert.equal(spec.revisionHistoryLimit, 3)
    assert.deepEqual(spec.strategy, { type: 'RollingUpdate', rollingUpdate: { maxUnavailable: 0, maxSurge: 1 } })
    assert.deepEqual(spec.selector.matchLabels, SELECTOR)
    assert.ok(selects(spec.selector.matchLabels, spec.template.metadata.labels))
  })

  it('spreads replicas over nodes, with the relay\'s selector filled in', () => {
    assert.deepEqual(r.podSpec.topologySpreadConstraints, [{
      maxSkew: 1, topologyKey: 'kubernetes.io/hostname', whenUnsatisfiable: 'ScheduleAnyway', labelSelector: { matchLabels: SELECTOR }
    }])
    for (const key of ['nodeSelector', 'affinity', 'tolerations', 'priorityClassName', 'imagePullSecrets']) {
      assert.equal(r.podSpec[key], undefined, key)
    }
  })

  it('exposes the relay on a ClusterIP Service port 5010 named http, selecting the relay pods', () => {
    const svc = r.relayService
    assert.equal(svc.metadata.name, FULLNAME)
    assert.equal(svc.spec.type, 'ClusterIP')
    assert.deepEqual(svc.spec.ports, [{ name: 'http', port: 5010, targetPort: 'http', protocol: 'TCP' }])
    assert.deepEqual(svc.spec.selector, SELECTOR)
    assert.ok(selects(svc.spec.selector, r.deployment.spec.template.metadata.labels))
  })

  it('renders the GPU host as an ExternalName Service gpu-server -> gpuExternalName.host on port 5010', () => {
    const gpu = gpuService(r)
    assert.equal(gpu.spec.type, 'ExternalName')
    assert.equal(gpu.spec.externalName, 'gpu-box.example.com')
    assert.deepEqual(gpu.spec.ports, [{ name: 'http', port: 5010, targetPort: 5010, protocol: 'TCP' }])
    assert.equal(gpu.spec.selector, undefined)
    assert.equal(gpu.metadata.labels?.['app.kubernetes.io/component'], 'gpu-upstream')
    assert.ok(!selects(SELECTOR, gpu.metadata.labels), 'the relay\'s selector must not match the GPU Service')
    assert.equal(r.has('EndpointSlice'), false)
    assert.equal(r.has('Endpoints'), false)
  })

  it('renders an Ingress (traefik, cert-manager issuer, TLS) to the Service port http', () => {
    const ing = r.one('Ingress')
    assert.equal(ing.spec.ingressClassName, 'traefik')
    assert.deepEqual(ing.metadata.annotations, { 'cert-manager.io/cluster-issuer': 'letsencrypt-prod' })
    assert.deepEqual(ing.spec.tls, [{ secretName: 'tokenplace-relay-tls', hosts: ['relay.example.com'] }])
    assert.deepEqual(ing.spec.rules, [{
      host: 'relay.example.com',
      http: { paths: [{ path: '/', pathType: 'Prefix', backend: { service: { name: FULLNAME, port: { name: 'http' } } } }] }
    }])
  })

  it('renders a NetworkPolicy: ingress from Traefik and the test pod on the relay port; egress to egressCidrs and DNS', () => {
    const np = r.one('NetworkPolicy')
    assert.deepEqual(np.spec.podSelector, { matchLabels: SELECTOR })
    assert.deepEqual(np.spec.policyTypes, ['Ingress', 'Egress'])
    const testPod = r.one('Pod')
    assert.deepEqual(np.spec.ingress, [
      {
        from: [{
          namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'kube-system' } },
          podSelector: { matchLabels: { 'app.kubernetes.io/name': 'traefik' } }
        }],
        ports: [{ port: 5010, protocol: 'TCP' }]
      },
      {
        from: [{ podSelector: { matchLabels: { 'app.kubernetes.io/name': 'tokenplace-relay', 'app.kubernetes.io/instance': RELEASE, 'app.kubernetes.io/component': 'test' } } }],
        ports: [{ port: 5010, protocol: 'TCP' }]
      }
    ])
    assert.ok(selects(np.spec.ingress[1].from[0].podSelector.matchLabels, testPod.metadata.labels), 'the test pod is admitted')
    assert.deepEqual(np.spec.egress, [
      { to: [{ ipBlock: { cidr: '203.0.113.7/32' } }], ports: [{ port: 5010, protocol: 'TCP' }] },
      {
        to: [{
          namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'kube-system' } },
          podSelector: { matchLabels: { 'k8s-app': 'kube-dns' } }
        }],
        ports: [{ port: 53, protocol: 'UDP' }, { port: 53, protocol: 'TCP' }]
      }
    ])
  })

  it('has a hardened helm test pod that GETs /healthz through the relay Service, with the relay image', () => {
    const pod = r.one('Pod')
    assert.equal(pod.metadata.annotations?.['helm.sh/hook'], 'test')
    assert.equal(pod.spec.restartPolicy, 'Never')
    const [c] = pod.spec.containers
    assert.equal(c.image, 'ghcr.io/your-org/tokenplace-relay:sha-abc1234')
    assert.deepEqual(c.command.slice(0, 3), ['node', '--input-type=module', '--eval'])
    assert.deepEqual(c.env, [
      { name: 'HEALTHZ_URL', value: `http://${FULLNAME}.${NAMESPACE}.svc:5010/healthz` },
      { name: 'ATTEMPTS', value: '5' },
      { name: 'RETRY_SECONDS', value: '3' }
    ])
    assert.equal(pod.spec.securityContext.runAsNonRoot, true)
    assert.equal(c.securityContext.readOnlyRootFilesystem, true)
    assert.ok(!selects(r.deployment.spec.selector.matchLabels, pod.metadata.labels), 'the Deployment must never adopt the test pod')
    assert.ok(!selects(r.relayService.spec.selector, pod.metadata.labels), 'the relay Service must not route to the test pod')
  })

  it('the test pod also requests helmTest.upstreamPath through the relay when it is set', async () => {
    const pod = (await render({ helmTest: { upstreamPath: '/api/health' } })).one('Pod')
    const env = Object.fromEntries(pod.spec.containers[0].env.map((e: { name: string, value: string }) => [e.name, e.value]))
    assert.equal(env.CHECK_URL, `http://${FULLNAME}.${NAMESPACE}.svc:5010/api/health`)
    assert.equal(env.RELAY_UPSTREAM, r.env.UPSTREAM_URL)
    assert.equal(r.one('Pod').spec.containers[0].env.some((e: { name: string }) => e.name === 'CHECK_URL'), false, 'not by default')
  })

  it('renders no HPA, PDB or ServiceMonitor', () => {
    for (const kind of ['HorizontalPodAutoscaler', 'PodDisruptionBudget', 'ServiceMonitor']) assert.equal(r.has(kind), false, kind)
  })
})

describe('image', { concurrency: true }, () => {
  it('defaults the tag to the chart appVersion', async () => {
    const r = await render()
    assert.equal(r.container.image, `ghcr.io/tokenplace/tokenplace-relay:${chart.appVersion}`)
    assert.equal(r.deployment.metadata.labels?.['app.kubernetes.io/version'], chart.appVersion)
  })

  it('renders repository@digest when image.digest is set, even with a tag', async () => {
    const r = await render({ image: { repository: 'ghcr.io/acme/tokenplace-relay', tag: 'sha-abc1234', digest: DIGEST, pullPolicy: 'Always' } })
    assert.equal(r.container.image, `ghcr.io/acme/tokenplace-relay@${DIGEST}`)
    assert.equal(r.container.imagePullPolicy, 'Always')
    assert.equal(r.one('Pod').spec.containers[0].image, `ghcr.io/acme/tokenplace-relay@${DIGEST}`)
  })

  it('passes imagePullSecrets to the relay and the test pod', async () => {
    const r = await render({ imagePullSecrets: [{ name: 'ghcr-pull' }] })
    assert.deepEqual(r.podSpec.imagePullSecrets, [{ name: 'ghcr-pull' }])
    assert.deepEqual(r.one('Pod').spec.imagePullSecrets, [{ name: 'ghcr-pull' }])
  })
})

describe('relay settings', { concurrency: true }, () => {
  it('maps relay.* to the env vars, keeping decimals and big integers plain', async () => {
    const r = await render({
      relay: {
        port: 8080,
        workers: 4,
        logLevel: 'debug',
        upstreamTimeoutSeconds: 1800.5,
        bodyLimitBytes: 104857600,
        shutdownDelaySeconds: 2.5,
        shutdownTimeoutSeconds: 45,
        trustProxy: ['10.42.0.0/16', '192.168.1.1']
      },
      upstream: { url: 'http://gpu-server:5010/base' }
    })
    const env = r.env
    assert.equal(env.RELAY_PORT, '8080')
    assert.equal(env.RELAY_WORKERS, '4')
    assert.equal(env.RELAY_LOG_LEVEL, 'debug')
    assert.equal(env.RELAY_UPSTREAM_TIMEOUT_SECONDS, '1800.5')
    assert.equal(env.RELAY_BODY_LIMIT_BYTES, '104857600')
    assert.equal(env.RELAY_SHUTDOWN_DELAY_SECONDS, '2.5')
    assert.equal(env.RELAY_SHUTDOWN_TIMEOUT_SECONDS, '45')
    assert.equal(env.RELAY_TRUST_PROXY, '10.42.0.0/16,192.168.1.1')
    assert.equal(env.UPSTREAM_URL, 'http://gpu-server:5010/base')
    assert.deepEqual(r.container.ports, [{ name: 'http', containerPort: 8080, protocol: 'TCP' }])
    assert.equal(r.podSpec.terminationGracePeriodSeconds, 63, 'ceil(2.5 + 45) + 15')
    assert.deepEqual(r.one('NetworkPolicy').spec.ingress[0].ports, [{ port: 8080, protocol: 'TCP' }])
  })

  it('maps relay.limits.* to the overload-protection variables, keeping decimals and big integers plain', async () => {
    const r = await render({
      relay: {
        limits: {
          maxConcurrent: 1000000,
          queueLimit: 0,
          queueTimeoutSeconds: 2.5,
          maxConcurrentPerClient: 3,
          rateLimit: 1000000000,
          rateLimitWindowSeconds: 0.25,
          maxEventLoopDelayMs: 60000
        }
      }
    })
    const env = r.env
    assert.equal(env.RELAY_MAX_CONCURRENT, '1000000')
    assert.equal(env.RELAY_QUEUE_LIMIT, '0')
    assert.equal(env.RELAY_QUEUE_TIMEOUT_SECONDS, '2.5')
    assert.equal(env.RELAY_MAX_CONCURRENT_PER_CLIENT, '3')
    assert.equal(env.RELAY_RATE_LIMIT, '1000000000')
    assert.equal(env.RELAY_RATE_LIMIT_WINDOW_SECONDS, '0.25')
    assert.equal(env.RELAY_MAX_EVENT_LOOP_DELAY_MS, '60000')
  })

  it('a limit set to 0 is rendered as 0 (off), not left out: the pod says what it runs', async () => {
    const r = await render({ relay: { limits: { maxConcurrent: 0, maxConcurrentPerClient: 0, rateLimit: 0, maxEventLoopDelayMs: 0 } } })
    for (const name of ['RELAY_MAX_CONCURRENT', 'RELAY_MAX_CONCURRENT_PER_CLIENT', 'RELAY_RATE_LIMIT', 'RELAY_MAX_EVENT_LOOP_DELAY_MS']) assert.equal(r.env[name], '0', name)
    assert.equal(r.env.RELAY_QUEUE_LIMIT, '20')
  })

  it('reads RELAY_METRICS_TOKEN from relay.metricsToken.existingSecret / key (default key "token")', async () => {
    const r = await render({ relay: { metricsToken: { existingSecret: 'relay-metrics' } } })
    const token = r.container.env.find((e: { name: string }) => e.name === 'RELAY_METRICS_TOKEN')
    assert.deepEqual(token, { name: 'RELAY_METRICS_TOKEN', valueFrom: { secretKeyRef: { name: 'relay-metrics', key: 'token' } } })
  })

  it('appends extraEnv after the chart\'s variables', async () => {
    const r = await render({
      extraEnv: [
        { name: 'RELAY_METRICS_MAX_ENDPOINTS', value: '50' },
        { name: 'NODE_OPTIONS', valueFrom: { configMapKeyRef: { name: 'relay-node', key: 'options' } } }
      ]
    })
    const env = r.container.env as Array<{ name: string }>
    assert.deepEqual(env.slice(-2), [
      { name: 'RELAY_METRICS_MAX_ENDPOINTS', value: '50' },
      { name: 'NODE_OPTIONS', valueFrom: { configMapKeyRef: { name: 'relay-node', key: 'options' } } }
    ])
  })

  it('uses terminationGracePeriodSeconds when it is set', async () => {
    const r = await render({ terminationGracePeriodSeconds: 120 })
    assert.equal(r.podSpec.terminationGracePeriodSeconds, 120)
  })

  it('applies probe timings and the resources value', async () => {
    const r = await render({
      startupProbe: { periodSeconds: 5, failureThreshold: 60, timeoutSeconds: 2 },
      livenessProbe: { initialDelaySeconds: 5, periodSeconds: 20, timeoutSeconds: 5, failureThreshold: 6 },
      readinessProbe: { periodSeconds: 10, timeoutSeconds: 2, failureThreshold: 3, successThreshold: 2 },
      resources: { requests: { cpu: '250m', memory: '300Mi' }, limits: { cpu: 1, memory: '1Gi' } }
    })
    const c = r.container
    assert.deepEqual(c.startupProbe, { httpGet: { path: '/livez', port: 'http' }, periodSeconds: 5, failureThreshold: 60, timeoutSeconds: 2 })
    assert.deepEqual(c.livenessProbe, { httpGet: { path: '/livez', port: 'http' }, initialDelaySeconds: 5, periodSeconds: 20, timeoutSeconds: 5, failureThreshold: 6 })
    assert.deepEqual(c.readinessProbe, { httpGet: { path: '/healthz', port: 'http' }, periodSeconds: 10, timeoutSeconds: 2, failureThreshold: 3, successThreshold: 2 })
    assert.deepEqual(c.resources, { requests: { cpu: '250m', memory: '300Mi' }, limits: { cpu: 1, memory: '1Gi' } })
  })

  it('merges podSecurityContext and securityContext overrides into the hardened defaults', async () => {
    const r = await render({
      podSecurityContext: { runAsUser: 2000, runAsGroup: 2000, fsGroup: 2000 },
      securityContext: { runAsUser: 2000, runAsGroup: 2000 }
    })
    assert.deepEqual(r.podSpec.securityContext, { runAsNonRoot: true, runAsUser: 2000, runAsGroup: 2000, fsGroup: 2000, seccompProfile: { type: 'RuntimeDefault' } })
    assert.equal(r.container.securityContext.runAsUser, 2000)
    assert.equal(r.container.securityContext.readOnlyRootFilesystem, true)
  })
})

describe('GPU Service modes', { concurrency: true }, () => {
  it('headless: a selectorless headless Service plus a discovery.k8s.io/v1 EndpointSlice, no ExternalName', async () => {
    const r = await render({ gpuExternalName: { headless: { enabled: true, endpoints: ['192.168.1.50', '192.168.1.51'] } } })
    const svc = gpuService(r)
    assert.equal(svc.spec.clusterIP, 'None')
    assert.equal(svc.spec.type, 'ClusterIP')
    assert.equal(svc.spec.externalName, undefined)
    assert.equal(svc.spec.selector, undefined)
    assert.deepEqual(svc.spec.ports, [{ name: 'http', port: 5010, targetPort: 5010, protocol: 'TCP' }])

    const slice = r.one('EndpointSlice')
    assert.equal(slice.apiVersion, 'discovery.k8s.io/v1')
    assert.equal(slice.metadata.labels?.['kubernetes.io/service-name'], 'gpu-server')
    const managedBy = slice.metadata.labels?.['endpointslice.kubernetes.io/managed-by']
    assert.ok(managedBy !== undefined && managedBy !== 'endpointslice-controller.k8s.io' && !/controller/.test(managedBy), `managed-by ${managedBy}`)
    assert.equal(slice.metadata.labels?.['app.kubernetes.io/component'], 'gpu-upstream')
    assert.equal(slice.addressType, 'IPv4')
    assert.deepEqual(slice.ports, [{ name: svc.spec.ports[0].name, port: 5010, protocol: 'TCP' }])
    assert.deepEqual(slice.endpoints, [
      { addresses: ['192.168.1.50'], conditions: { ready: true } },
      { addresses: ['192.168.1.51'], conditions: { ready: true } }
    ])
    assert.equal(r.has('Endpoints'), false)
  })

  it('headless: the NetworkPolicy allows the endpoint IPs automatically, next to egressCidrs', async () => {
    const r = await render({ gpuExternalName: { headless: { enabled: true, endpoints: ['192.168.1.50'] } } })
    assert.deepEqual(r.one('NetworkPolicy').spec.egress[0], {
      to: [{ ipBlock: { cidr: '203.0.113.7/32' } }, { ipBlock: { cidr: '192.168.1.50/32' } }],
      ports: [{ port: 5010, protocol: 'TCP' }]
    })
    const only = await render({ gpuExternalName: { headless: { enabled: true, endpoints: ['192.168.1.50'] } }, networkPolicy: { egressCidrs: [] } })
    assert.deepEqual(only.one('NetworkPolicy').spec.egress[0].to, [{ ipBlock: { cidr: '192.168.1.50/32' } }])
  })

  it('headless with legacyEndpoints: a v1 Endpoints named like the Service instead of the EndpointSlice', async () => {
    const r = await render({ gpuExternalName: { headless: { enabled: true, endpoints: ['192.168.1.50'], legacyEndpoints: true } } })
    const ep = r.one('Endpoints')
    assert.equal(ep.metadata.name, 'gpu-server')
    assert.deepEqual(ep.subsets, [{ addresses: [{ ip: '192.168.1.50' }], ports: [{ name: 'http', port: 5010, protocol: 'TCP' }] }])
    assert.equal(r.has('EndpointSlice'), false)
    assert.equal(gpuService(r).spec.clusterIP, 'None')
  })

  it('switching back to ExternalName keeps the endpoints value without using it', async () => {
    const r = await render({ gpuExternalName: { host: 'gpu-box.lan', headless: { enabled: false, endpoints: ['192.168.1.50'] } } })
    assert.equal(gpuService(r).spec.externalName, 'gpu-box.lan')
    assert.equal(r.has('EndpointSlice'), false)
    assert.deepEqual(r.one('NetworkPolicy').spec.egress[0].to, [{ ipBlock: { cidr: '203.0.113.7/32' } }])
  })

  it('gpuExternalName.name and .port rename the GPU Service and its port', async () => {
    const r = await render({
      gpuExternalName: { name: 'gpu', port: 8000, host: 'gpu.lan', headless: { endpoints: ['192.168.1.50'] } },
      upstream: { url: 'http://gpu.tokenplace.svc.cluster.local:8000' }
    })
    const svc = r.one('Service', 'gpu')
    assert.deepEqual(svc.spec.ports, [{ name: 'http', port: 8000, targetPort: 8000, protocol: 'TCP' }])
    assert.deepEqual(r.one('NetworkPolicy').spec.egress[0].ports, [{ port: 8000, protocol: 'TCP' }])
    const headless = await render({ gpuExternalName: { name: 'gpu', port: 8000, headless: { enabled: true, endpoints: ['192.168.1.50'] } }, upstream: { url: 'http://gpu:8000' } })
    assert.equal(headless.one('EndpointSlice').metadata.labels?.['kubernetes.io/service-name'], 'gpu')
    assert.equal(headless.one('EndpointSlice').ports[0].port, 8000)
  })

  it('an empty upstream.url follows gpuExternalName.name and .port, in both modes', async () => {
    const [externalName, headless] = await Promise.all([
      render({ gpuExternalName: { name: 'gpu-alt', port: 8000 } }),
      render({ gpuExternalName: { name: 'gpu-alt', port: 8000, headless: { enabled: true, endpoints: ['192.168.1.50'] } }, networkPolicy: { egressCidrs: [] } })
    ])
    for (const r of [externalName, headless]) {
      assert.equal(r.env.UPSTREAM_URL, 'http://gpu-alt:8000')
      assert.deepEqual(r.one('Service', 'gpu-alt').spec.ports[0].port, 8000)
      assert.deepEqual(r.one('NetworkPolicy').spec.egress[0].ports, [{ port: 8000, protocol: 'TCP' }])
    }
    assert.deepEqual(headless.one('NetworkPolicy').spec.egress[0].to, [{ ipBlock: { cidr: '192.168.1.50/32' } }])
  })

  it('an explicit upstream.url wins over the GPU Service, on any host, scheme or port', async () => {
    const [other, samePortless] = await Promise.all([
      render({ upstream: { url: 'https://gpu-box.token.place:8443' }, gpuExternalName: { headless: { enabled: true, endpoints: ['192.168.1.50'] } } }),
      render({ upstream: { url: 'http://gpu-server.tokenplace.svc' } })
    ])
    assert.equal(other.env.UPSTREAM_URL, 'https://gpu-box.token.place:8443')
    assert.deepEqual(other.one('NetworkPolicy').spec.egress[0], {
      to: [{ ipBlock: { cidr: '203.0.113.7/32' } }],
      ports: [{ port: 8443, protocol: 'TCP' }]
    }, 'the headless endpoints are not the upstream here, so only egressCidrs are allowed')
    assert.equal(samePortless.env.UPSTREAM_URL, 'http://gpu-server.tokenplace.svc')
    assert.deepEqual(samePortless.one('NetworkPolicy').spec.egress[0].ports, [{ port: 80, protocol: 'TCP' }])
  })

  it('gpuExternalName.enabled=false renders no GPU Service; egress follows the upstream URL\'s port', async () => {
    const r = await render({ gpuExternalName: { enabled: false }, upstream: { url: 'https://gpu-box.token.place/v1' } })
    assert.equal(r.all('Service').length, 1)
    assert.equal(r.env.UPSTREAM_URL, 'https://gpu-box.token.place/v1')
    assert.deepEqual(r.one('NetworkPolicy').spec.egress[0].ports, [{ port: 443, protocol: 'TCP' }])
  })
})

describe('upstream.ca and extra volumes', { concurrency: true }, () => {
  const caPath = (r: Rendered): string => {
    const mount = r.container.volumeMounts.find((m: { name: string }) => m.name === 'upstream-ca')
    const volume = r.podSpec.volumes.find((v: { name: string }) => v.name === 'upstream-ca')
    const items = (volume.configMap ?? volume.secret).items
    assert.equal(items.length, 1)
    return `${mount.mountPath as string}/${items[0].path as string}`
  }

  it('upstream.ca.existingConfigMap: mounted read-only, NODE_EXTRA_CA_CERTS names the file', async () => {
    const r = await render({ upstream: { url: 'https://gpu-box.token.place:8443', ca: { existingConfigMap: 'gpu-ca' } } })
    assert.deepEqual(r.podSpec.volumes.find((v: { name: string }) => v.name === 'upstream-ca'), {
      name: 'upstream-ca', configMap: { name: 'gpu-ca', items: [{ key: 'ca.crt', path: 'ca.crt' }] }
    })
    assert.deepEqual(r.container.volumeMounts, [
      { name: 'tmp', mountPath: '/tmp' },
      { name: 'upstream-ca', mountPath: '/etc/tokenplace-relay/upstream-ca', readOnly: true }
    ])
    assert.equal(r.env.NODE_EXTRA_CA_CERTS, '/etc/tokenplace-relay/upstream-ca/ca.crt')
    assert.equal(r.env.NODE_EXTRA_CA_CERTS, caPath(r))
  })

  it('upstream.ca.existingSecret with upstream.ca.key: the Secret\'s key is the file', async () => {
    const r = await render({ upstream: { url: 'https://gpu-box.token.place:8443', ca: { existingSecret: 'gpu-ca-secret', key: 'root.pem' } } })
    assert.deepEqual(r.podSpec.volumes.find((v: { name: string }) => v.name === 'upstream-ca'), {
      name: 'upstream-ca', secret: { secretName: 'gpu-ca-secret', items: [{ key: 'root.pem', path: 'root.pem' }] }
    })
    assert.equal(r.env.NODE_EXTRA_CA_CERTS, '/etc/tokenplace-relay/upstream-ca/root.pem')
    assert.equal(r.env.NODE_EXTRA_CA_CERTS, caPath(r))
  })

  it('no CA: no volume, no NODE_EXTRA_CA_CERTS', async () => {
    const r = await render({ upstream: { ca: { key: 'root.pem' } } })
    assert.equal(r.env.NODE_EXTRA_CA_CERTS, undefined)
    assert.deepEqual(r.podSpec.volumes.map((v: { name: string }) => v.name), ['tmp'])
  })

  it('extraVolumes and extraVolumeMounts are added after the chart\'s own', async () => {
    const r = await render({
      upstream: { url: 'https://gpu-box.token.place:8443', ca: { existingConfigMap: 'gpu-ca' } },
      extraVolumes: [{ name: 'client-cert', secret: { secretName: 'gpu-client-cert' } }, { name: 'cache', emptyDir: { sizeLimit: '16Mi' } }],
      extraVolumeMounts: [{ name: 'client-cert', mountPath: '/etc/client-cert', readOnly: true }, { name: 'cache', mountPath: '/var/cache/relay' }]
    })
    assert.deepEqual(r.podSpec.volumes.map((v: { name: string }) => v.name), ['tmp', 'upstream-ca', 'client-cert', 'cache'])
    assert.deepEqual(r.podSpec.volumes.slice(2), [{ name: 'client-cert', secret: { secretName: 'gpu-client-cert' } }, { name: 'cache', emptyDir: { sizeLimit: '16Mi' } }])
    assert.deepEqual(r.container.volumeMounts.slice(2), [{ name: 'client-cert', mountPath: '/etc/client-cert', readOnly: true }, { name: 'cache', mountPath: '/var/cache/relay' }])
  })
})

describe('ingress', { concurrency: true }, () => {
  it('ingress.enabled=false renders no Ingress and needs no TLS', async () => {
    const r = await render({ ingress: { enabled: false, tls: [] } })
    assert.equal(r.has('Ingress'), false)
  })

  it('uses className, annotations, hosts with paths, and tls', async () => {
    const r = await render({
      ingress: {
        className: 'nginx',
        annotations: { 'cert-manager.io/cluster-issuer': 'letsencrypt-staging', 'traefik.ingress.kubernetes.io/router.entrypoints': 'websecure' },
        hosts: [
          { host: 'relay.token.place', paths: [{ path: '/v1', pathType: 'Prefix' }, { path: '/healthz', pathType: 'Exact' }] },
          { host: 'api.token.place', paths: [{ path: '/', pathType: 'ImplementationSpecific' }] }
        ],
        tls: [{ secretName: 'relay-tls', hosts: ['relay.token.place', 'api.token.place'] }]
      }
    })
    const ing = r.one('Ingress')
    assert.equal(ing.spec.ingressClassName, 'nginx')
    assert.equal(ing.metadata.annotations?.['cert-manager.io/cluster-issuer'], 'letsencrypt-staging')
    assert.equal(ing.metadata.annotations?.['traefik.ingress.kubernetes.io/router.entrypoints'], 'websecure')
    assert.deepEqual(ing.spec.tls, [{ secretName: 'relay-tls', hosts: ['relay.token.place', 'api.token.place'] }])
    assert.deepEqual(ing.spec.rules.map((rule: any) => [rule.host, rule.http.paths.map((p: any) => `${p.pathType}:${p.path}`)]), [
      ['relay.token.place', ['Prefix:/v1', 'Exact:/healthz']],
      ['api.token.place', ['ImplementationSpecific:/']]
    ])
  })
})

describe('ingress defaults and wildcard TLS', { concurrency: true }, () => {
  it('a host without paths gets / (Prefix); a path without pathType gets Prefix', async () => {
    const r = await render({
      ingress: {
        hosts: [{ host: 'relay.token.place' }, { host: 'api.token.place', paths: [{ path: '/v1' }, { path: '/healthz', pathType: 'Exact' }] }],
        tls: [{ secretName: 'relay-tls', hosts: ['relay.token.place', 'api.token.place'] }]
      }
    })
    assert.deepEqual(r.one('Ingress').spec.rules.map((rule: any) => [rule.host, rule.http.paths.map((p: any) => `${p.pathType}:${p.path}`)]), [
      ['relay.token.place', ['Prefix:/']],
      ['api.token.place', ['Prefix:/v1', 'Exact:/healthz']]
    ])
  })

  it('paths emptied with null, [] or --set {} also mean / (Prefix)', async () => {
    const tls = [{ hosts: ['relay.token.place'] }]
    const rendered = await Promise.all([
      render({ ingress: { hosts: [{ host: 'relay.token.place', paths: null }], tls } }),
      render({ ingress: { hosts: [{ host: 'relay.token.place', paths: [] }], tls } }),
      render({ ingress: { hosts: [{ host: 'relay.token.place' }], tls } }, { args: ['--set', 'ingress.hosts[0].paths={}'] })
    ])
    for (const r of rendered) assert.deepEqual(r.one('Ingress').spec.rules[0].http.paths.map((p: any) => `${p.pathType}:${p.path}`), ['Prefix:/'])
  })

  it('a host under a wildcard TLS entry is accepted; a TLS entry without secretName gets <fullname>-tls', async () => {
    const r = await render({
      ingress: {
        hosts: [{ host: 'relay.mydomain.org' }, { host: 'api.mydomain.org' }, { host: 'relay.token.place' }],
        tls: [{ hosts: ['*.mydomain.org'] }, { hosts: ['relay.token.place'] }]
      }
    })
    assert.deepEqual(r.one('Ingress').spec.tls, [
      { secretName: `${FULLNAME}-tls`, hosts: ['*.mydomain.org'] },
      { secretName: `${FULLNAME}-tls-1`, hosts: ['relay.token.place'] }
    ])
    assert.deepEqual(r.one('Ingress').spec.rules.map((rule: any) => rule.host), ['relay.mydomain.org', 'api.mydomain.org', 'relay.token.place'])
  })

  it('a wildcard ingress host is covered by the same wildcard in TLS', async () => {
    const r = await render({ ingress: { hosts: [{ host: '*.mydomain.org' }], tls: [{ secretName: 'wildcard-tls', hosts: ['*.mydomain.org'] }] } })
    assert.equal(r.one('Ingress').spec.rules[0].host, '*.mydomain.org')
  })
})

describe('networkPolicy', { concurrency: true }, () => {
  it('networkPolicy.enabled=false renders no NetworkPolicy and needs no egressCidrs', async () => {
    const r = await render({ networkPolicy: { enabled: false, egressCidrs: [] } })
    assert.equal(r.has('NetworkPolicy'), false)
  })

  it('allowDns=false drops the DNS rule; dnsPeers/traefikPeers, extraIngress and extraEgress are used', async () => {
    const r = await render({
      networkPolicy: {
        egressCidrs: ['192.168.1.50/32', '192.168.2.0/24'],
        allowDns: false,
        traefikPeers: [{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'traefik' } }, podSelector: { matchExpressions: [{ key: 'app.kubernetes.io/name', operator: 'In', values: ['traefik'] }] } }],
        extraIngress: [{ from: [{ podSelector: { matchLabels: { app: 'client' } } }] }],
        extraEgress: [{ to: [{ ipBlock: { cidr: '192.168.1.60/32' } }] }]
      }
    })
    const np = r.one('NetworkPolicy').spec
    assert.deepEqual(np.egress, [
      { to: [{ ipBlock: { cidr: '192.168.1.50/32' } }, { ipBlock: { cidr: '192.168.2.0/24' } }], ports: [{ port: 5010, protocol: 'TCP' }] },
      { to: [{ ipBlock: { cidr: '192.168.1.60/32' } }] }
    ])
    assert.deepEqual(np.ingress[0].from, [{
      namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'traefik' } },
      podSelector: { matchExpressions: [{ key: 'app.kubernetes.io/name', operator: 'In', values: ['traefik'] }] }
    }])
    assert.deepEqual(np.ingress.at(-1), { from: [{ podSelector: { matchLabels: { app: 'client' } } }] })

    const dns = await render({ networkPolicy: { dnsPeers: [{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'dns' } }, podSelector: { matchLabels: { app: 'coredns' } } }] } })
    assert.deepEqual(dns.one('NetworkPolicy').spec.egress[1].to, [{
      namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'dns' } }, podSelector: { matchLabels: { app: 'coredns' } }
    }])
  })
})

describe('redis', { concurrency: true }, () => {
  const REDIS_PEER = { namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'redis' } }, podSelector: { matchLabels: { 'app.kubernetes.io/name': 'redis' } } }
  const redisRules = (r: Rendered): any[] => r.one('NetworkPolicy').spec.egress.filter((rule: any) => rule.ports?.some((p: { port: number }) => p.port !== 53 && p.port !== 5010))

  it('without redis.existingSecret: no RELAY_REDIS_URL and no egress to Redis, whatever networkPolicy.redisPeers says', async () => {
    const [bare, peers] = await Promise.all([
      render({}),
      render({ networkPolicy: { redisPeers: [{ ipBlock: { cidr: '192.168.1.60/32' } }] }, redis: { key: 'uri', port: 6380 } })
    ])
    for (const r of [bare, peers]) {
      assert.equal(r.env.RELAY_REDIS_URL, undefined)
      assert.deepEqual(redisRules(r), [])
      assert.deepEqual(r.one('NetworkPolicy').spec.egress.map((rule: any) => rule.ports[0].port), [5010, 53], 'the GPU host and DNS only')
    }
  })

  it('redis.existingSecret: RELAY_REDIS_URL from that Secret\'s key url, never a plain value; egress to the default peers on 6379', async () => {
    const r = await render({ redis: { existingSecret: 'relay-redis' } })
    const entry = r.container.env.find((e: { name: string }) => e.name === 'RELAY_REDIS_URL')
    assert.deepEqual(entry, { name: 'RELAY_REDIS_URL', valueFrom: { secretKeyRef: { name: 'relay-redis', key: 'url' } } })
    assert.deepEqual(redisRules(r), [{ to: [REDIS_PEER], ports: [{ port: 6379, protocol: 'TCP' }] }])
  })

  it('redis.key, redis.port and networkPolicy.redisPeers (an ipBlock for a Redis outside the cluster) land where they should', async () => {
    const r = await render({
      redis: { existingSecret: 'lan-redis', key: 'uri', port: 6380 },
      networkPolicy: { redisPeers: [{ ipBlock: { cidr: '192.168.1.60/32' } }, { podSelector: { matchLabels: { app: 'redis' } } }] }
    })
    assert.equal(r.env.RELAY_REDIS_URL, 'secret:lan-redis/uri')
    assert.deepEqual(redisRules(r), [{ to: [{ ipBlock: { cidr: '192.168.1.60/32' } }, { podSelector: { matchLabels: { app: 'redis' } } }], ports: [{ port: 6380, protocol: 'TCP' }] }])
  })

  it('the Redis rule stands on its own: with allowDns off, and next to extraEgress', async () => {
    const r = await render({ redis: { existingSecret: 'relay-redis' }, networkPolicy: { allowDns: false, extraEgress: [{ to: [{ ipBlock: { cidr: '192.168.1.70/32' } }] }] } })
    assert.deepEqual(r.one('NetworkPolicy').spec.egress.map((rule: any) => rule.ports?.[0]?.port ?? 'extra'), [5010, 6379, 'extra'])
  })

  it('redis.existingSecret with the NetworkPolicy off: the URL still comes from the Secret', async () => {
    const r = await render({ redis: { existingSecret: 'relay-redis' }, networkPolicy: { enabled: false } })
    assert.equal(r.env.RELAY_REDIS_URL, 'secret:relay-redis/url')
    assert.equal(r.has('NetworkPolicy'), false)
  })
})

/** The relabeling the chart's ServiceMonitor always starts with (servicemonitor.yaml says why). */
const DROP_ENDPOINT_LABEL = { action: 'labeldrop', regex: 'endpoint' }

describe('metrics.serviceMonitor', { concurrency: true }, () => {
  it('selects the relay Service and never the GPU Service, with interval, timeout, labels and the bearer token', async () => {
    const r = await render({
      relay: { metricsToken: { existingSecret: 'relay-metrics', key: 'bearer' } },
      metrics: { serviceMonitor: { enabled: true, labels: { release: 'kube-prometheus-stack' }, interval: '1m', scrapeTimeout: '15s' } }
    })
    const sm = r.one('ServiceMonitor')
    assert.equal(sm.apiVersion, 'monitoring.coreos.com/v1')
    assert.equal(sm.metadata.labels?.release, 'kube-prometheus-stack')
    assert.ok(selects(sm.spec.selector.matchLabels, r.relayService.metadata.labels), 'selects the relay Service')
    assert.ok(!selects(sm.spec.selector.matchLabels, gpuService(r).metadata.labels), 'does not select the GPU Service')
    assert.deepEqual(sm.spec.namespaceSelector, { matchNames: [NAMESPACE] })
    assert.deepEqual(sm.spec.endpoints, [{
      port: 'http',
      path: '/metrics',
      scheme: 'http',
      interval: '1m',
      scrapeTimeout: '15s',
      authorization: { type: 'Bearer', credentials: { name: 'relay-metrics', key: 'bearer' } },
      relabelings: [DROP_ENDPOINT_LABEL]
    }])
    assert.deepEqual(r.env.RELAY_METRICS_TOKEN, 'secret:relay-metrics/bearer')
  })

  it('relabelings, metricRelabelings, jobLabel, honorLabels land in the ServiceMonitor; namespace moves only the object', async () => {
    const relabelings = [{ targetLabel: 'cluster', replacement: 'pi-cluster' }]
    const metricRelabelings = [{ sourceLabels: ['__name__'], regex: 'nodejs_.*', action: 'drop' }]
    const r = await render({
      metrics: { serviceMonitor: { enabled: true, namespace: 'monitoring', jobLabel: 'app.kubernetes.io/name', honorLabels: true, relabelings, metricRelabelings } }
    })
    const sm = r.one('ServiceMonitor')
    assert.equal(sm.metadata.namespace, 'monitoring')
    assert.deepEqual(sm.spec.namespaceSelector, { matchNames: [NAMESPACE] }, 'it still selects the release\'s namespace')
    assert.ok(selects(sm.spec.selector.matchLabels, r.relayService.metadata.labels))
    assert.equal(sm.spec.jobLabel, 'app.kubernetes.io/name')
    assert.ok(sm.spec.jobLabel in (r.relayService.metadata.labels ?? {}), 'the job label is one the Service carries')
    const [endpoint] = sm.spec.endpoints
    assert.equal(endpoint.honorLabels, true)
    assert.deepEqual(endpoint.relabelings, [DROP_ENDPOINT_LABEL, ...relabelings], 'the chart\'s own relabeling first, then metrics.serviceMonitor.relabelings')
    assert.deepEqual(endpoint.metricRelabelings, metricRelabelings)
  })

  it('the ServiceMonitor options left at their defaults render nothing', async () => {
    const sm = (await render({ metrics: { serviceMonitor: { enabled: true } } })).one('ServiceMonitor')
    assert.equal(sm.metadata.namespace, NAMESPACE)
    assert.equal(sm.spec.jobLabel, undefined)
    for (const key of ['honorLabels', 'metricRelabelings']) assert.equal(sm.spec.endpoints[0][key], undefined, key)
    assert.deepEqual(sm.spec.endpoints[0].relabelings, [DROP_ENDPOINT_LABEL])
  })

  it('drops the endpoint="http" target label the Prometheus Operator adds, which would rename the relay\'s endpoint label exported_endpoint', async () => {
    // What Prometheus does with a scraped label that clashes with a target label (honor_labels false):
    // test/ops/prometheus.test.ts shows the relay's endpoint label arriving intact through a real one.
    const sm = (await render({ metrics: { serviceMonitor: { enabled: true, relabelings: [{ targetLabel: 'cluster', replacement: 'lab' }] } } })).one('ServiceMonitor')
    assert.deepEqual(sm.spec.endpoints[0].relabelings[0], { action: 'labeldrop', regex: 'endpoint' })
    assert.equal(sm.spec.endpoints[0].port, 'http', 'the port the operator would have named the label after')
  })

  it('admits Prometheus through the NetworkPolicy only when the ServiceMonitor is on', async () => {
    const [on, off] = await Promise.all([
      render({ metrics: { serviceMonitor: { enabled: true } }, networkPolicy: { prometheusPeers: [{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'observability' } }, podSelector: { matchLabels: { app: 'prometheus' } } }] } }),
      render()
    ])
    const rule = on.one('NetworkPolicy').spec.ingress[1]
    assert.deepEqual(rule, {
      from: [{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'observability' } }, podSelector: { matchLabels: { app: 'prometheus' } } }],
      ports: [{ port: 5010, protocol: 'TCP' }]
    })
    assert.equal(on.one('ServiceMonitor').spec.endpoints[0].authorization, undefined, 'no token configured: no authorization')
    assert.equal(off.one('NetworkPolicy').spec.ingress.length, 2)
  })
})

// Issue 12: the alerts and the dashboard. The rules' meaning is proven by promtool (test/ops/alerts.test.ts)
// and a real Prometheus (test/ops/prometheus.test.ts); here: what lands where, and the selector.
const ALERTS = ['RelayDown', 'RelayUpstreamUnreachable', 'RelayNotReady', 'RelayHighErrorRate', 'RelaySlowFirstByte', 'RelayOverloaded', 'RelayRateLimitStoreDown']
const MONITORING = { serviceMonitor: { enabled: true }, prometheusRule: { enabled: true } }
const RUNBOOK = 'https://github.com/tokenplace/tokenplace-relay/blob/main/charts/tokenplace-relay/README.md'

function rules (r: Rendered): any[] {
  const spec = r.one('PrometheusRule').spec
  assert.equal(spec.groups.length, 1)
  return spec.groups[0].rules
}

function rule (r: Rendered, alert: string): any {
  const found = rules(r).find((x) => x.alert === alert)
  assert.ok(found !== undefined, `no alert ${alert}`)
  return found
}

/** Every `metric{matchers}` selector of a PromQL expression, as [metric, matchers]. */
function selectorsOf (expr: string): Array<[string, string]> {
  return [...expr.matchAll(/([a-zA-Z_:][a-zA-Z0-9_:]*)\{([^}]*)\}/g)].map((m) => [m[1] as string, m[2] as string])
}

/** The job label the Prometheus Operator gives the ServiceMonitor's targets, computed from what was rendered. */
function operatorJob (r: Rendered): string {
  const jobLabel: string | undefined = r.one('ServiceMonitor').spec.jobLabel
  const value = jobLabel === undefined ? undefined : r.relayService.metadata.labels?.[jobLabel]
  return value !== undefined && value !== '' ? value : r.relayService.metadata.name
}

describe('metrics.prometheusRule', { concurrency: true }, () => {
  it('renders one PrometheusRule with the seven alerts, their defaults, and a runbook anchor each', async () => {
    const r = await render({ metrics: MONITORING })
    const pr = r.one('PrometheusRule')
    assert.equal(pr.apiVersion, 'monitoring.coreos.com/v1')
    assert.equal(pr.metadata.name, FULLNAME)
    assert.equal(pr.metadata.namespace, NAMESPACE)
    assert.equal(pr.metadata.labels?.['app.kubernetes.io/instance'], RELEASE)
    assert.equal(pr.spec.groups[0].name, FULLNAME)
    assert.deepEqual(rules(r).map((x) => x.alert), ALERTS)
    const defaults: Record<string, [string, string]> = {
      RelayDown: ['5m', 'critical'],
      RelayUpstreamUnreachable: ['5m', 'critical'],
      RelayNotReady: ['10m', 'warning'],
      RelayHighErrorRate: ['10m', 'warning'],
      RelaySlowFirstByte: ['15m', 'warning'],
      RelayOverloaded: ['10m', 'warning'],
      RelayRateLimitStoreDown: ['10m', 'warning']
    }
    for (const x of rules(r)) {
      assert.deepEqual([x.for, x.labels.severity], defaults[x.alert], x.alert)
      assert.deepEqual(Object.keys(x.annotations).sort(), ['description', 'runbook_url', 'summary'], x.alert)
      assert.equal(x.annotations.runbook_url, `${RUNBOOK}#${(x.alert as string).toLowerCase()}`)
      assert.match(x.annotations.summary, /\{\{ \$labels\.namespace \}\}/, `${x.alert}: Prometheus templates reach Prometheus untouched`)
    }
    assert.match(rule(r, 'RelayHighErrorRate').expr, /\n> 0\.05$/)
    assert.match(rule(r, 'RelayHighErrorRate').annotations.description, /above the threshold of 5%\./)
    assert.match(rule(r, 'RelaySlowFirstByte').expr, /^histogram_quantile\(0\.95, sum by \(namespace, job, endpoint, le\) \(rate\(relay_upstream_time_to_first_byte_seconds_bucket\{[^}]*\}\[5m\]\)\)\)\n> 10$/)
    assert.match(rule(r, 'RelayOverloaded').expr, /relay_rejected_requests_total\{[^}]*,reason=~"queue_full\|queue_timeout\|overloaded"\}\[5m\]/)
    assert.match(rule(r, 'RelayOverloaded').expr, /\n> 0\.05$/)
    assert.match(rule(r, 'RelayUpstreamUnreachable').expr, /relay_upstream_errors_total\{[^}]*,reason=~"connect\|dns"\}/)
    assert.match(rule(r, 'RelayRateLimitStoreDown').expr, /^sum by \(namespace, job\) \(increase\(relay_rate_limit_store_errors_total\{[^}]*\}\[5m\]\)\) > 0$/)
  })

  it('every selector of every alert picks exactly the ServiceMonitor\'s targets: its job and the release\'s namespace', async () => {
    const r = await render({ metrics: MONITORING })
    assert.equal(operatorJob(r), FULLNAME)
    for (const x of rules(r)) {
      const selectors = selectorsOf(x.expr)
      assert.ok(selectors.length > 0, x.alert)
      for (const [metric, matchers] of selectors) {
        assert.ok(matchers.startsWith(`job="${FULLNAME}",namespace="${NAMESPACE}"`), `${x.alert}: ${metric}{${matchers}}`)
      }
      // Both labels survive every aggregation, so Alertmanager can route and group by namespace.
      for (const by of (x.expr as string).matchAll(/(?:sum|max) by \(([^)]*)\)/g)) {
        assert.match(by[1] as string, /\bnamespace\b.*\bjob\b/, `${x.alert}: by (${by[1]})`)
      }
    }
  })

  it('follows metrics.serviceMonitor.jobLabel the way the Prometheus Operator does, and the release\'s namespace wherever the objects live', async () => {
    const cases: Array<[object, string, string, RenderOptions?]> = [
      [{ jobLabel: 'app.kubernetes.io/name' }, 'tokenplace-relay', NAMESPACE],
      [{ jobLabel: 'app.kubernetes.io/instance' }, RELEASE, NAMESPACE],
      // A label the Service lacks: the operator keeps the Service name (and NOTES.txt warns).
      [{ jobLabel: 'app' }, FULLNAME, NAMESPACE],
      [{ namespace: 'monitoring' }, FULLNAME, NAMESPACE],
      [{}, 'lab-relay', NAMESPACE, { args: ['--set', 'fullnameOverride=lab-relay'] }],
      [{}, FULLNAME, 'ai', { args: ['--namespace', 'ai'] }]
    ]
    await Promise.all(cases.map(async ([serviceMonitor, job, namespace, options]) => {
      const r = await render({ metrics: { ...MONITORING, serviceMonitor: { enabled: true, ...serviceMonitor }, prometheusRule: { enabled: true, namespace: 'monitoring' } } }, options)
      const where = JSON.stringify(serviceMonitor) + JSON.stringify(options ?? {})
      assert.equal(operatorJob(r), job, where)
      assert.equal(r.relayService.metadata.namespace, namespace, where)
      assert.equal(r.one('PrometheusRule').metadata.namespace, 'monitoring', where)
      for (const x of rules(r)) {
        for (const [metric, matchers] of selectorsOf(x.expr)) assert.ok(matchers.startsWith(`job="${job}",namespace="${namespace}"`), `${where} ${x.alert}: ${metric}{${matchers}}`)
      }
    }))
  })

  it('labels, namespace, rateWindow, runbookUrl, every threshold, for, severity and reasons land in the rules', async () => {
    const r = await render({
      metrics: {
        serviceMonitor: { enabled: true, interval: '1m' },
        prometheusRule: {
          enabled: true,
          labels: { release: 'kube-prometheus-stack' },
          namespace: 'monitoring',
          rateWindow: '10m',
          runbookUrl: 'https://wiki.lab.token.place/relay',
          alerts: {
            RelayDown: { for: '2m', severity: 'warning' },
            RelayUpstreamUnreachable: { for: '3m', severity: 'warning' },
            RelayNotReady: { for: '20m', severity: 'info' },
            RelayHighErrorRate: { threshold: 0.25, for: '30m', severity: 'critical' },
            RelaySlowFirstByte: { thresholdSeconds: 2.5, for: '1h', severity: 'info' },
            RelayOverloaded: { threshold: 0.005, reasons: ['queue_full', 'rate_limit'], for: '0s', severity: 'critical' },
            RelayRateLimitStoreDown: { for: '30m', severity: 'info' }
          }
        }
      }
    })
    const pr = r.one('PrometheusRule')
    assert.equal(pr.metadata.labels?.release, 'kube-prometheus-stack')
    assert.equal(pr.metadata.namespace, 'monitoring')
    const expected: Record<string, [string, string]> = {
      RelayDown: ['2m', 'warning'],
      RelayUpstreamUnreachable: ['3m', 'warning'],
      RelayNotReady: ['20m', 'info'],
      RelayHighErrorRate: ['30m', 'critical'],
      RelaySlowFirstByte: ['1h', 'info'],
      RelayOverloaded: ['0s', 'critical'],
      RelayRateLimitStoreDown: ['30m', 'info']
    }
    for (const x of rules(r)) {
      assert.deepEqual([x.for, x.labels.severity], expected[x.alert], x.alert)
      assert.equal(x.annotations.runbook_url, `https://wiki.lab.token.place/relay#${(x.alert as string).toLowerCase()}`)
      for (const window of (x.expr as string).matchAll(/\}\[([^\]]+)\]/g)) assert.equal(window[1], '10m', `${x.alert} window`)
    }
    assert.match(rule(r, 'RelayHighErrorRate').expr, /\n> 0\.25$/)
    assert.match(rule(r, 'RelayHighErrorRate').annotations.description, /Over the last 10m, .* above the threshold of 25%\./)
    assert.match(rule(r, 'RelaySlowFirstByte').expr, /\n> 2\.5$/)
    assert.match(rule(r, 'RelaySlowFirstByte').annotations.description, /^For 1h .* has been above 2\.5s:/)
    assert.match(rule(r, 'RelayOverloaded').expr, /reason=~"queue_full\|rate_limit"\}\[10m\]/)
    assert.match(rule(r, 'RelayOverloaded').expr, /\n> 0\.005$/)
    assert.match(rule(r, 'RelayOverloaded').annotations.description, /above the threshold of 0\.5%\./)
    assert.match(rule(r, 'RelayDown').annotations.description, /^For 2m Prometheus has scraped no relay pod/)
    assert.match(rule(r, 'RelayRateLimitStoreDown').annotations.description, /^For 30m operations of the shared rate-limit store .* failures over the last 10m\)/)
  })

  it('each alert can be left out on its own', async () => {
    const rendered = await Promise.all(ALERTS.map(async (alert) => await render({ metrics: { ...MONITORING, prometheusRule: { enabled: true, alerts: { [alert]: { enabled: false } } } } })))
    rendered.forEach((r, i) => { assert.deepEqual(rules(r).map((x) => x.alert), ALERTS.filter((_, j) => j !== i)) })
  })

  it('an alert set to null is left out like a disabled one; a disabled one needs none of its other values', async () => {
    const [nulled, disabled] = await Promise.all([
      render({ metrics: { ...MONITORING, prometheusRule: { enabled: true, alerts: { RelayDown: null, RelayOverloaded: null } } } }),
      render({ metrics: { ...MONITORING, prometheusRule: { enabled: true, alerts: { RelayHighErrorRate: { enabled: false, threshold: null, for: null } } } } })
    ])
    assert.deepEqual(rules(nulled).map((x) => x.alert), ['RelayUpstreamUnreachable', 'RelayNotReady', 'RelayHighErrorRate', 'RelaySlowFirstByte', 'RelayRateLimitStoreDown'])
    assert.deepEqual(rules(disabled).map((x) => x.alert), ALERTS.filter((a) => a !== 'RelayHighErrorRate'))
  })

  it('renders nothing when off, whatever else is set', async () => {
    const r = await render({ metrics: { serviceMonitor: { enabled: true }, prometheusRule: { enabled: false, labels: { release: 'x' } } } })
    assert.equal(r.has('PrometheusRule'), false)
  })
})

describe('metrics.dashboard', { concurrency: true }, () => {
  const dashboardFile = readFileSync(join(CHART_DIR, 'dashboards', 'tokenplace-relay.json'), 'utf8')

  it('a ConfigMap with the chart\'s dashboard file as it is, labelled for kube-prometheus-stack\'s Grafana sidecar', async () => {
    const r = await render({ metrics: { dashboard: { enabled: true } } })
    const cm = r.one('ConfigMap')
    assert.equal(cm.metadata.name, `${FULLNAME}-dashboard`)
    assert.equal(cm.metadata.namespace, NAMESPACE)
    assert.equal(cm.metadata.labels?.grafana_dashboard, '1')
    assert.equal(cm.metadata.labels?.['app.kubernetes.io/instance'], RELEASE)
    assert.equal(cm.metadata.annotations, undefined)
    assert.deepEqual(Object.keys(cm.data), ['tokenplace-relay.json'])
    assert.equal(cm.data['tokenplace-relay.json'], dashboardFile.trimEnd(), 'the file, byte for byte')
    assert.equal(JSON.parse(cm.data['tokenplace-relay.json']).uid, 'tokenplace-relay')
    assert.equal(r.has('PrometheusRule'), false, 'the dashboard needs no PrometheusRule, nor a ServiceMonitor')
  })

  it('labels, annotations and namespace land on the ConfigMap', async () => {
    const r = await render({ metrics: { dashboard: { enabled: true, labels: { grafana_dashboard: 'relay', team: 'lab' }, annotations: { grafana_folder: 'Relay' }, namespace: 'monitoring' } } })
    const cm = r.one('ConfigMap')
    assert.equal(cm.metadata.namespace, 'monitoring')
    assert.equal(cm.metadata.labels?.grafana_dashboard, 'relay')
    assert.equal(cm.metadata.labels?.team, 'lab')
    assert.deepEqual(cm.metadata.annotations, { grafana_folder: 'Relay' })
  })
})

describe('scaling', { concurrency: true }, () => {
  it('replicaCount > 1 renders replicas and a PDB (maxUnavailable 1, AlwaysAllow)', async () => {
    const r = await render({ replicaCount: 3, revisionHistoryLimit: 5 })
    assert.equal(r.deployment.spec.replicas, 3)
    assert.equal(r.deployment.spec.revisionHistoryLimit, 5)
    assert.equal(r.deployment.spec.strategy.rollingUpdate.maxUnavailable, 0)
    const pdb = r.one('PodDisruptionBudget')
    assert.deepEqual(pdb.spec, { selector: { matchLabels: SELECTOR }, maxUnavailable: 1, unhealthyPodEvictionPolicy: 'AlwaysAllow' })
    assert.equal(r.has('HorizontalPodAutoscaler'), false)
  })

  it('podDisruptionBudget.maxUnavailable takes a percentage', async () => {
    const r = await render({ replicaCount: 4, podDisruptionBudget: { maxUnavailable: '25%' } })
    assert.equal(r.one('PodDisruptionBudget').spec.maxUnavailable, '25%')
  })

  it('one replica renders no PDB, and podDisruptionBudget.enabled=false none either', async () => {
    const [one, disabled] = await Promise.all([render({ replicaCount: 1 }), render({ replicaCount: 3, podDisruptionBudget: { enabled: false } })])
    assert.equal(one.has('PodDisruptionBudget'), false)
    assert.equal(disabled.has('PodDisruptionBudget'), false)
  })

  it('minAvailable (number or percentage) wins over maxUnavailable; unhealthyPodEvictionPolicy is passed', async () => {
    const r = await render({ replicaCount: 2, podDisruptionBudget: { minAvailable: '50%', unhealthyPodEvictionPolicy: 'IfHealthyBudget' } })
    assert.deepEqual(r.one('PodDisruptionBudget').spec, { selector: { matchLabels: SELECTOR }, minAvailable: '50%', unhealthyPodEvictionPolicy: 'IfHealthyBudget' })
  })

  it('autoscaling renders an autoscaling/v2 HPA on the Deployment, drops replicas, and a PDB from minReplicas', async () => {
    const r = await render({
      replicaCount: 1,
      autoscaling: { enabled: true, minReplicas: 3, maxReplicas: 6, targetCPUUtilizationPercentage: 70, targetMemoryUtilizationPercentage: 80, behavior: { scaleDown: { stabilizationWindowSeconds: 600 } } }
    })
    assert.equal(r.deployment.spec.replicas, undefined)
    const hpa = r.one('HorizontalPodAutoscaler')
    assert.equal(hpa.apiVersion, 'autoscaling/v2')
    assert.deepEqual(hpa.spec, {
      scaleTargetRef: { apiVersion: 'apps/v1', kind: 'Deployment', name: FULLNAME },
      minReplicas: 3,
      maxReplicas: 6,
      metrics: [
        { type: 'Resource', resource: { name: 'cpu', target: { type: 'Utilization', averageUtilization: 70 } } },
        { type: 'Resource', resource: { name: 'memory', target: { type: 'Utilization', averageUtilization: 80 } } }
      ],
      behavior: { scaleDown: { stabilizationWindowSeconds: 600 } }
    })
    assert.ok(r.has('PodDisruptionBudget'))
  })

  it('autoscaling with minReplicas 1 renders no PDB; a null CPU target leaves only memory', async () => {
    const r = await render({ autoscaling: { enabled: true, minReplicas: 1, targetCPUUtilizationPercentage: null, targetMemoryUtilizationPercentage: 75 } })
    assert.equal(r.has('PodDisruptionBudget'), false)
    assert.deepEqual(r.one('HorizontalPodAutoscaler').spec.metrics.map((m: any) => m.resource.name), ['memory'])
  })
})

describe('scheduling, metadata and names', { concurrency: true }, () => {
  it('passes nodeSelector, affinity, tolerations, priorityClassName, topologySpreadConstraints, podAnnotations, podLabels', async () => {
    const affinity = { podAntiAffinity: { preferredDuringSchedulingIgnoredDuringExecution: [{ weight: 50, podAffinityTerm: { topologyKey: 'kubernetes.io/hostname', labelSelector: { matchLabels: SELECTOR } } }] } }
    const r = await render({
      nodeSelector: { 'kubernetes.io/arch': 'arm64' },
      affinity,
      tolerations: [{ key: 'dedicated', operator: 'Equal', value: 'relay', effect: 'NoSchedule' }],
      priorityClassName: 'relay-critical',
      topologySpreadConstraints: [
        { maxSkew: 2, topologyKey: 'topology.kubernetes.io/zone', whenUnsatisfiable: 'DoNotSchedule' },
        { maxSkew: 1, topologyKey: 'kubernetes.io/hostname', whenUnsatisfiable: 'ScheduleAnyway', labelSelector: { matchLabels: { custom: 'yes' } } }
      ],
      podAnnotations: { 'example.org/owner': 'platform' },
      podLabels: { team: 'platform' }
    })
    const spec = r.podSpec
    assert.deepEqual(spec.nodeSelector, { 'kubernetes.io/arch': 'arm64' })
    assert.deepEqual(spec.affinity, affinity)
    assert.deepEqual(spec.tolerations, [{ key: 'dedicated', operator: 'Equal', value: 'relay', effect: 'NoSchedule' }])
    assert.equal(spec.priorityClassName, 'relay-critical')
    assert.deepEqual(spec.topologySpreadConstraints, [
      { maxSkew: 2, topologyKey: 'topology.kubernetes.io/zone', whenUnsatisfiable: 'DoNotSchedule', labelSelector: { matchLabels: SELECTOR } },
      { maxSkew: 1, topologyKey: 'kubernetes.io/hostname', whenUnsatisfiable: 'ScheduleAnyway', labelSelector: { matchLabels: { custom: 'yes' } } }
    ])
    const meta = r.deployment.spec.template.metadata
    assert.deepEqual(meta.annotations, { 'example.org/owner': 'platform' })
    assert.equal(meta.labels.team, 'platform')
    assert.ok(selects(SELECTOR, meta.labels))
    assert.deepEqual(r.one('Pod').spec.nodeSelector, { 'kubernetes.io/arch': 'arm64' })
    assert.deepEqual(r.one('Pod').spec.tolerations, spec.tolerations)
  })

  it('serviceAccount: create with a name and annotations, or use an existing one', async () => {
    const [created, existing, fallback] = await Promise.all([
      render({ serviceAccount: { create: true, name: 'relay-sa', annotations: { 'example.org/role': 'relay' } } }),
      render({ serviceAccount: { create: false, name: 'shared' } }),
      render({ serviceAccount: { create: false } })
    ])
    assert.equal(created.one('ServiceAccount').metadata.name, 'relay-sa')
    assert.deepEqual(created.one('ServiceAccount').metadata.annotations, { 'example.org/role': 'relay' })
    assert.equal(created.podSpec.serviceAccountName, 'relay-sa')
    assert.equal(existing.has('ServiceAccount'), false)
    assert.equal(existing.podSpec.serviceAccountName, 'shared')
    assert.equal(fallback.podSpec.serviceAccountName, 'default')
  })

  it('service.type, service.port and service.annotations shape the relay Service and the test URL', async () => {
    const r = await render({ service: { type: 'LoadBalancer', port: 80, annotations: { 'metallb.universe.tf/address-pool': 'public' } } })
    const svc = r.relayService
    assert.equal(svc.spec.type, 'LoadBalancer')
    assert.deepEqual(svc.spec.ports, [{ name: 'http', port: 80, targetPort: 'http', protocol: 'TCP' }])
    assert.deepEqual(svc.metadata.annotations, { 'metallb.universe.tf/address-pool': 'public' })
    assert.equal(r.one('Pod').spec.containers[0].env[0].value, `http://${FULLNAME}.${NAMESPACE}.svc:80/healthz`)
  })

  it('nameOverride and fullnameOverride rename the relay objects, not the GPU Service', async () => {
    const [name, full] = await Promise.all([render({ nameOverride: 'edge' }), render({ fullnameOverride: 'tp-relay' })])
    assert.equal(name.deployment.metadata.name, `${RELEASE}-edge`)
    assert.equal(name.deployment.metadata.labels?.['app.kubernetes.io/name'], 'edge')
    assert.equal(full.deployment.metadata.name, 'tp-relay')
    assert.equal(full.relayService.metadata.name, 'tp-relay')
    assert.equal(full.one('Ingress').spec.rules[0].http.paths[0].backend.service.name, 'tp-relay')
    assert.ok(full.has('Service', 'gpu-server'))
  })

  it('real values render with no placeholder left in any object', async () => {
    const r = await render(REAL_VALUES)
    const text = JSON.stringify(r.objects)
    assert.doesNotMatch(text, /example\.com|203\.0\.113\./)
  })
})

describe('coverage of this file', () => {
  it('sets every value of the chart README (values.yaml) to a non-default value in some test above', () => {
    const valuesYaml = readFileSync(join(CHART_DIR, 'values.yaml'), 'utf8')
    const schema = JSON.parse(readFileSync(join(CHART_DIR, 'values.schema.json'), 'utf8'))
    const defaults = parseYaml(valuesYaml)
    const at = (node: unknown, path: string[]): unknown => path.reduce<unknown>((n, key) => (n !== null && typeof n === 'object' && key in n) ? (n as Record<string, unknown>)[key] : undefined, node)
    const untested = valueRows(valuesYaml, schema).map((row) => row.key).filter((key) => {
      const path = key.split('.')
      const fallback = at(defaults, path)
      return !renderedValues.some((values) => {
        const value = at(values, path)
        return value !== undefined && !isDeepStrictEqual(value, fallback)
      })
    })
    assert.deepEqual(untested, [], 'values no test in this file sets')
  })
})
