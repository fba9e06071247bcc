// Value sets the chart tests render: the matrix of issue 3 (defaults, headless, ingress off,
// networkPolicy off, ServiceMonitor on, digest pinned, replicas with HPA and PDB) plus a few more
// (issue 12: the PrometheusRule and the dashboard ConfigMap, with the ServiceMonitor and everything on).
import { readdirSync } from 'node:fs'
import { join } from 'node:path'
import { CHART_DIR, ISSUE_INSTALL_SET_ARGS, type RenderOptions } from './chart-helm.js'

export interface ChartCase {
  name: string
  values: object
  options?: RenderOptions
}

/**
 * Values an operator would really use: no example.com, no documentation CIDR, and Traefik's k3s pod
 * range trusted (behind the Ingress the per-client limits need it).
 */
export const REAL_VALUES = {
  relay: { trustProxy: ['10.42.0.0/16'] },
  gpuExternalName: { host: 'gpu-box.lan.token.place' },
  networkPolicy: { egressCidrs: ['192.168.1.50/32'] },
  ingress: {
    hosts: [{ host: 'relay.token.place', paths: [{ path: '/', pathType: 'Prefix' }] }],
    tls: [{ secretName: 'relay-token-place-tls', hosts: ['relay.token.place'] }]
  }
}

export const DIGEST = 'sha256:' + '0123456789abcdef'.repeat(4)

export const MATRIX: ChartCase[] = [
  { name: 'defaults (the issue install command)', values: {}, options: { args: ISSUE_INSTALL_SET_ARGS } },
  { name: 'real values', values: REAL_VALUES },
  {
    name: 'headless',
    values: { gpuExternalName: { headless: { enabled: true, endpoints: ['192.168.1.50', '192.168.1.51'] } } }
  },
  {
    name: 'headless with legacy Endpoints',
    values: { gpuExternalName: { headless: { enabled: true, endpoints: ['192.168.1.50'], legacyEndpoints: true } } }
  },
  { name: 'ingress off', values: { ingress: { enabled: false } } },
  { name: 'networkPolicy off', values: { networkPolicy: { enabled: false } } },
  {
    name: 'ServiceMonitor on, with a metrics token',
    values: {
      relay: { metricsToken: { existingSecret: 'relay-metrics', key: 'bearer' } },
      metrics: { serviceMonitor: { enabled: true, labels: { release: 'kube-prometheus-stack' }, interval: '1m', scrapeTimeout: '15s' } }
    }
  },
  {
    name: 'ServiceMonitor, PrometheusRule and dashboard on (issue 12)',
    values: {
      ...REAL_VALUES,
      metrics: {
        serviceMonitor: { enabled: true, labels: { release: 'kube-prometheus-stack' } },
        prometheusRule: { enabled: true, labels: { release: 'kube-prometheus-stack' } },
        dashboard: { enabled: true }
      }
    }
  },
  { name: 'digest pinned', values: { image: { tag: 'sha-abc1234', digest: DIGEST } } },
  {
    name: 'replicas with HPA and PDB',
    values: {
      autoscaling: { enabled: true, minReplicas: 3, maxReplicas: 6, targetCPUUtilizationPercentage: 70, targetMemoryUtilizationPercentage: 80 },
      podDisruptionBudget: { maxUnavailable: 1 }
    }
  },
  { name: 'several replicas without HPA', values: { replicaCount: 3 } },
  {
    name: 'GPU Service off, https upstream',
    values: { gpuExternalName: { enabled: false }, upstream: { url: 'https://gpu-box.token.place:8443/v1' } }
  },
  {
    name: 'https upstream with a private CA and extra volumes',
    values: {
      ...REAL_VALUES,
      upstream: { url: 'https://gpu-box.lan.token.place:8443', ca: { existingConfigMap: 'gpu-ca' } },
      gpuExternalName: { enabled: false },
      extraVolumes: [{ name: 'client-cert', secret: { secretName: 'gpu-client-cert' } }],
      extraVolumeMounts: [{ name: 'client-cert', mountPath: '/etc/client-cert', readOnly: true }]
    }
  },
  {
    name: 'everything on',
    values: {
      ...REAL_VALUES,
      imagePullSecrets: [{ name: 'ghcr-pull' }],
      relay: {
        trustProxy: ['10.42.0.0/16'],
        metricsToken: { existingSecret: 'relay-metrics' },
        limits: { maxConcurrent: 2, queueLimit: 40, queueTimeoutSeconds: 45, maxConcurrentPerClient: 1, rateLimit: 120, rateLimitWindowSeconds: 60, maxEventLoopDelayMs: 1000 }
      },
      redis: { existingSecret: 'relay-redis' },
      extraEnv: [{ name: 'RELAY_METRICS_MAX_ENDPOINTS', value: '50' }],
      metrics: {
        serviceMonitor: {
          enabled: true,
          labels: { release: 'kube-prometheus-stack' },
          namespace: 'monitoring',
          jobLabel: 'app.kubernetes.io/name',
          honorLabels: true,
          relabelings: [{ targetLabel: 'cluster', replacement: 'pi-cluster' }],
          metricRelabelings: [{ sourceLabels: ['__name__'], regex: 'nodejs_.*', action: 'drop' }]
        },
        prometheusRule: {
          enabled: true,
          labels: { release: 'kube-prometheus-stack' },
          namespace: 'monitoring',
          rateWindow: '10m',
          alerts: {
            RelayHighErrorRate: { threshold: 0.1, for: '15m', severity: 'critical' },
            RelaySlowFirstByte: { thresholdSeconds: 20 },
            RelayOverloaded: { reasons: ['queue_full', 'queue_timeout', 'rate_limit'] },
            RelayNotReady: { enabled: false }
          }
        },
        dashboard: { enabled: true, namespace: 'monitoring', annotations: { grafana_folder: 'Relay' } }
      },
      autoscaling: { enabled: true, behavior: { scaleDown: { stabilizationWindowSeconds: 600 } } },
      networkPolicy: {
        egressCidrs: ['192.168.1.50/32'],
        extraIngress: [{ from: [{ podSelector: { matchLabels: { app: 'client' } } }] }],
        redisPeers: [{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'data' } }, podSelector: { matchLabels: { 'app.kubernetes.io/name': 'redis' } } }],
        extraEgress: [{ to: [{ ipBlock: { cidr: '192.168.1.60/32' } }], ports: [{ port: 9000, protocol: 'TCP' }] }]
      },
      affinity: { nodeAffinity: { requiredDuringSchedulingIgnoredDuringExecution: { nodeSelectorTerms: [{ matchExpressions: [{ key: 'kubernetes.io/arch', operator: 'In', values: ['arm64'] }] }] } } },
      nodeSelector: { 'kubernetes.io/os': 'linux' },
      tolerations: [{ key: 'gpu', operator: 'Exists', effect: 'NoSchedule' }],
      priorityClassName: 'relay-critical',
      podAnnotations: { 'example.org/owner': 'platform' },
      podLabels: { team: 'platform' }
    }
  }
]

/** The examples shipped with the chart (charts/tokenplace-relay/examples/*.yaml). */
export const EXAMPLE_FILES = readdirSync(join(CHART_DIR, 'examples')).filter((f) => f.endsWith('.yaml')).sort()

/** Kubernetes minors the chart claims (Chart.yaml kubeVersion >=1.25) up to the newest Helm 4.1 knows. */
export const SUPPORTED_MINORS = [25, 26, 27, 28, 29, 30, 31, 32, 33, 34, 35]
