// Validates rendered objects against the Kubernetes OpenAPI schemas (kubernetes-models) and the
// Prometheus Operator CRD schemas (@kubernetes-models/prometheus-operator: ServiceMonitor,
// PrometheusRule), and checks pods against
// the Pod Security Standards "restricted" profile.
import { Deployment } from 'kubernetes-models/apps/v1/Deployment'
import { HorizontalPodAutoscaler } from 'kubernetes-models/autoscaling/v2/HorizontalPodAutoscaler'
import { EndpointSlice } from 'kubernetes-models/discovery.k8s.io/v1/EndpointSlice'
import { Ingress } from 'kubernetes-models/networking.k8s.io/v1/Ingress'
import { NetworkPolicy } from 'kubernetes-models/networking.k8s.io/v1/NetworkPolicy'
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1/PodDisruptionBudget'
import { ConfigMap } from 'kubernetes-models/v1/ConfigMap'
import { Endpoints } from 'kubernetes-models/v1/Endpoints'
import { Pod } from 'kubernetes-models/v1/Pod'
import { Service } from 'kubernetes-models/v1/Service'
import { ServiceAccount } from 'kubernetes-models/v1/ServiceAccount'
import { PrometheusRule } from '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/PrometheusRule'
import { ServiceMonitor } from '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/ServiceMonitor'
import type { K8sObject } from './chart-helm.js'

interface Validatable { validate: () => void }
type ModelClass = new (data: any) => Validatable

/** Every kind the chart may render. A kind missing here fails validation: add it when the chart grows. */
const MODELS: Record<string, ModelClass> = {
  'apps/v1/Deployment': Deployment,
  'autoscaling/v2/HorizontalPodAutoscaler': HorizontalPodAutoscaler,
  'discovery.k8s.io/v1/EndpointSlice': EndpointSlice,
  'networking.k8s.io/v1/Ingress': Ingress,
  'networking.k8s.io/v1/NetworkPolicy': NetworkPolicy,
  'policy/v1/PodDisruptionBudget': PodDisruptionBudget,
  'v1/ConfigMap': ConfigMap,
  'v1/Endpoints': Endpoints,
  'v1/Pod': Pod,
  'v1/Service': Service,
  'v1/ServiceAccount': ServiceAccount,
  'monitoring.coreos.com/v1/PrometheusRule': PrometheusRule,
  'monitoring.coreos.com/v1/ServiceMonitor': ServiceMonitor
}

export const KNOWN_KINDS = Object.keys(MODELS)

/** Throws an error naming the object and the schema violation. */
export function validateObject (object: K8sObject): void {
  const key = `${object.apiVersion}/${object.kind}`
  const Model = MODELS[key]
  if (Model === undefined) throw new Error(`no schema known for ${key} (${object.metadata?.name}); add it to test/helpers/chart-k8s.ts`)
  try {
    new Model(object).validate()
  } catch (err) {
    throw new Error(`${key} ${object.metadata?.name} does not match its schema: ${(err as Error).message}`)
  }
}

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/
const DNS_SUBDOMAIN = /^(?=.{1,253}$)[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/
const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/

/**
 * What the API server checks beyond the OpenAPI schema and the schema validation above can't see:
 * object names (Services need a DNS-1035 label, others a DNS subdomain) and label values.
 */
export function checkNamesAndLabels (object: K8sObject): void {
  const { name, labels } = object.metadata
  const where = `${object.kind} ${name}`
  if (object.kind === 'Service') {
    if (!DNS_LABEL.test(name) || name.length > 63 || !/^[a-z]/.test(name)) throw new Error(`${where}: a Service name must be a DNS-1035 label`)
  } else if (!DNS_SUBDOMAIN.test(name)) {
    throw new Error(`${where}: the name must be a DNS subdomain`)
  }
  for (const [key, value] of Object.entries(labels ?? {})) {
    if (typeof value !== 'string' || value.length > 63 || !LABEL_VALUE.test(value)) {
      throw new Error(`${where}: label ${key}=${JSON.stringify(value)} is not a valid label value`)
    }
  }
}

/** The pod specs an object runs: a Pod's spec, or a workload's pod template spec. */
export function podSpecsOf (object: K8sObject): any[] {
  if (object.kind === 'Pod') return [object.spec]
  if (object.spec?.template?.spec !== undefined) return [object.spec.template.spec]
  return []
}

/**
 * Pod Security Standards, "restricted" profile (what `pod-security.kubernetes.io/enforce: restricted`
 * admits), plus the chart's own rules: no service account token, no service links, read-only root fs.
 * Returns the violations (empty when compliant).
 */
export function restrictedViolations (spec: any): string[] {
  const problems: string[] = []
  if (spec.hostNetwork === true || spec.hostPID === true || spec.hostIPC === true) problems.push('uses a host namespace')
  if (spec.automountServiceAccountToken !== false) problems.push('mounts a service account token')
  if (spec.enableServiceLinks !== false) problems.push('has service links enabled')
  for (const volume of spec.volumes ?? []) {
    const types = Object.keys(volume).filter((k) => k !== 'name')
    const allowed = ['emptyDir', 'configMap', 'secret', 'projected', 'downwardAPI', 'persistentVolumeClaim', 'ephemeral', 'csi']
    if (!types.every((t) => allowed.includes(t))) problems.push(`volume ${volume.name} has a restricted type (${types.join(', ')})`)
  }
  const pod = spec.securityContext ?? {}
  const podSeccomp = pod.seccompProfile?.type
  for (const c of [...(spec.initContainers ?? []), ...spec.containers]) {
    const sc = c.securityContext ?? {}
    const where = `container ${c.name}`
    if (sc.privileged === true) problems.push(`${where} is privileged`)
    if (sc.allowPrivilegeEscalation !== false) problems.push(`${where} allows privilege escalation`)
    if ((sc.runAsNonRoot ?? pod.runAsNonRoot) !== true) problems.push(`${where} may run as root`)
    if ((sc.runAsUser ?? pod.runAsUser) === 0) problems.push(`${where} runs as uid 0`)
    const seccomp = sc.seccompProfile?.type ?? podSeccomp
    if (seccomp !== 'RuntimeDefault' && seccomp !== 'Localhost') problems.push(`${where} has no RuntimeDefault seccomp profile`)
    const drop: string[] = sc.capabilities?.drop ?? []
    if (!drop.includes('ALL')) problems.push(`${where} does not drop ALL capabilities`)
    const add: string[] = sc.capabilities?.add ?? []
    if (add.some((cap) => cap !== 'NET_BIND_SERVICE')) problems.push(`${where} adds capabilities`)
    if (sc.readOnlyRootFilesystem !== true) problems.push(`${where} has a writable root filesystem`)
    if ((c.ports ?? []).some((p: { hostPort?: number }) => p.hostPort !== undefined)) problems.push(`${where} uses a host port`)
  }
  return problems
}
