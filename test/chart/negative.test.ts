// Wrong values must be refused when rendering (so `helm install` refuses them), each with a message
// that names the value and says what is wrong. Schema errors come from values.schema.json, the
// others from templates/_validate.tpl.
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { renderError, type RenderOptions } from '../helpers/chart-helm.js'

interface NegativeCase {
  name: string
  values?: object
  options?: RenderOptions
  /** Every pattern must match helm's error output. */
  expect: RegExp[]
}

/** A value's path as Helm 4 (`/relay/port`) or Helm 3 (`relay.port`) prints it in schema errors. */
function at (path: string): RegExp {
  const parts = path.split('.').map((p) => p.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'))
  return new RegExp(`(/${parts.join('/')}|${parts.join('\\.')})\\b`)
}

const SCHEMA = /values don't meet the specifications of the schema/
const HEADLESS = (endpoints: unknown[]): object => ({ gpuExternalName: { headless: { enabled: true, endpoints } } })
/** The PrometheusRule on (with the ServiceMonitor it needs), with these prometheusRule and serviceMonitor values. */
const RULE = (prometheusRule: object, serviceMonitor: object = {}): object => ({ metrics: { serviceMonitor: { enabled: true, ...serviceMonitor }, prometheusRule: { enabled: true, ...prometheusRule } } })

const CASES: NegativeCase[] = [
  // GPU Service
  { name: 'headless with no endpoints', values: HEADLESS([]), expect: [/gpuExternalName\.headless\.enabled=true needs the GPU host's IPv4 address\(es\) in gpuExternalName\.headless\.endpoints/] },
  { name: 'headless with an out-of-range IP', values: HEADLESS(['300.1.2.3']), expect: [SCHEMA, at('gpuExternalName.headless.endpoints.0'), /300\.1\.2\.3|ipv4/] },
  { name: 'headless with a CIDR instead of an IP', values: HEADLESS(['192.168.1.50/32']), expect: [SCHEMA, at('gpuExternalName.headless.endpoints.0')] },
  { name: 'headless with a host name instead of an IP', values: HEADLESS(['gpu-box.lan']), expect: [SCHEMA, at('gpuExternalName.headless.endpoints.0')] },
  { name: 'headless with a loopback IP', values: HEADLESS(['127.0.0.1']), expect: [/gpuExternalName\.headless\.endpoints: 127\.0\.0\.1 is an unspecified, loopback, link-local/] },
  { name: 'headless with a link-local IP', values: HEADLESS(['169.254.1.1']), expect: [/169\.254\.1\.1 is an unspecified, loopback, link-local/] },
  { name: 'headless with a duplicate IP', values: HEADLESS(['192.168.1.50', '192.168.1.50']), expect: [SCHEMA, at('gpuExternalName.headless.endpoints')] },
  { name: 'an IPv4 address as gpuExternalName.host', values: { gpuExternalName: { host: '192.168.1.50' } }, expect: [/gpuExternalName\.host=192\.168\.1\.50 is an IP address, but an ExternalName Service can only carry a DNS name/, /gpuExternalName\.headless\.endpoints=\{192\.168\.1\.50\}/] },
  { name: 'an IPv6 address as gpuExternalName.host', values: { gpuExternalName: { host: 'fd00::1' } }, expect: [SCHEMA, at('gpuExternalName.host')] },
  { name: 'a malformed gpuExternalName.host', values: { gpuExternalName: { host: 'gpu_box.lan' } }, expect: [SCHEMA, at('gpuExternalName.host')] },
  { name: 'an empty gpuExternalName.host in ExternalName mode', values: { gpuExternalName: { host: '' } }, expect: [/gpuExternalName\.host is empty: set it to the DNS name of the GPU host/] },
  { name: 'gpuExternalName.name that is not a DNS label', values: { gpuExternalName: { name: 'GPU_Server' } }, expect: [SCHEMA, at('gpuExternalName.name')] },
  { name: 'gpuExternalName.port out of range', values: { gpuExternalName: { port: 65536 } }, expect: [SCHEMA, at('gpuExternalName.port')] },

  // upstream.url
  // (An upstream.url on another host or port than the GPU Service is accepted since issue 13: it wins.)
  { name: 'an empty upstream.url without the GPU Service', values: { gpuExternalName: { enabled: false } }, expect: [/upstream\.url is empty and gpuExternalName\.enabled=false, so nothing tells the relay where the GPU server is: set upstream\.url/] },
  { name: 'upstream.url without a scheme', values: { upstream: { url: 'gpu-server:5010' } }, expect: [SCHEMA, at('upstream.url')] },
  { name: 'upstream.url with credentials', values: { upstream: { url: 'http://user:pw@gpu-server:5010' } }, expect: [SCHEMA, at('upstream.url')] },
  { name: 'upstream.url with a query', values: { upstream: { url: 'http://gpu-server:5010/?a=1' } }, expect: [SCHEMA, at('upstream.url')] },
  { name: 'upstream.url with another scheme', values: { upstream: { url: 'ftp://gpu-server:5010' } }, expect: [SCHEMA, at('upstream.url')] },

  // upstream.ca, extra volumes
  { name: 'upstream.ca from a ConfigMap and a Secret at once', values: { upstream: { ca: { existingConfigMap: 'a', existingSecret: 'b' } } }, expect: [/upstream\.ca\.existingConfigMap=a and upstream\.ca\.existingSecret=b are both set: the CA comes from one of them, so set only one/] },
  { name: 'upstream.ca.key with a slash', values: { upstream: { ca: { existingSecret: 'b', key: 'certs/ca.crt' } } }, expect: [SCHEMA, at('upstream.ca.key')] },
  { name: 'extraEnv setting NODE_EXTRA_CA_CERTS next to upstream.ca', values: { upstream: { ca: { existingSecret: 'b' } }, extraEnv: [{ name: 'NODE_EXTRA_CA_CERTS', value: '/x.pem' }] }, expect: [/extraEnv sets NODE_EXTRA_CA_CERTS, which the chart sets from its values .*\(upstream\.ca mounts the CA and sets it\)/] },
  { name: 'an extra volume named like the chart\'s /tmp', values: { extraVolumes: [{ name: 'tmp', emptyDir: {} }] }, expect: [/extraVolumes has a volume named tmp, which the chart uses itself: give it another name/] },
  { name: 'two extra volumes with one name', values: { extraVolumes: [{ name: 'a', emptyDir: {} }, { name: 'a', emptyDir: {} }] }, expect: [/extraVolumes has a volume named a, which another extraVolumes entry already uses/] },
  { name: 'an extra volume without a name', values: { extraVolumes: [{ emptyDir: {} }] }, expect: [SCHEMA, at('extraVolumes.0')] },
  { name: 'an extra mount of no volume', values: { extraVolumeMounts: [{ name: 'certs', mountPath: '/etc/certs' }] }, expect: [/extraVolumeMounts mounts certs, but no volume has that name: add it to extraVolumes \(volumes now: tmp\)/] },
  { name: 'an extra mount over /tmp', values: { extraVolumes: [{ name: 'a', emptyDir: {} }], extraVolumeMounts: [{ name: 'a', mountPath: '/tmp/' }] }, expect: [/extraVolumeMounts mounts a at \/tmp\/, where another volume is already mounted/] },
  { name: 'an extra mount with a relative path', values: { extraVolumes: [{ name: 'a', emptyDir: {} }], extraVolumeMounts: [{ name: 'a', mountPath: 'certs' }] }, expect: [SCHEMA, at('extraVolumeMounts.0')] },

  // NetworkPolicy
  { name: 'egressCidrs containing 0.0.0.0/0', values: { networkPolicy: { egressCidrs: ['192.168.1.50/32', '0.0.0.0/0'] } }, expect: [/networkPolicy\.egressCidrs: 0\.0\.0\.0\/0 would allow egress to the whole Internet/] },
  { name: 'egressCidrs containing ::/0', values: { networkPolicy: { egressCidrs: ['::/0'] } }, expect: [/networkPolicy\.egressCidrs: ::\/0 would allow egress to the whole Internet/] },
  { name: 'egressCidrs containing an address without a prefix length', values: { networkPolicy: { egressCidrs: ['192.168.1.50'] } }, expect: [SCHEMA, at('networkPolicy.egressCidrs.0')] },
  { name: 'egressCidrs containing a host name', values: { networkPolicy: { egressCidrs: ['gpu-box.lan'] } }, expect: [SCHEMA, at('networkPolicy.egressCidrs.0')] },
  { name: 'egressCidrs containing a /33', values: { networkPolicy: { egressCidrs: ['192.168.1.0/33'] } }, expect: [SCHEMA, at('networkPolicy.egressCidrs.0')] },
  { name: 'no egress to the GPU host in ExternalName mode', values: { networkPolicy: { egressCidrs: [] } }, expect: [/networkPolicy\.enabled=true but nothing lets the relay reach the GPU host: set networkPolicy\.egressCidrs/] },

  // image
  { name: 'a digest that is too short', values: { image: { digest: 'sha256:abc' } }, expect: [SCHEMA, at('image.digest')] },
  { name: 'a digest of another algorithm', values: { image: { digest: 'md5:' + 'a'.repeat(32) } }, expect: [SCHEMA, at('image.digest')] },
  { name: 'a digest in upper case', values: { image: { digest: 'sha256:' + 'A'.repeat(64) } }, expect: [SCHEMA, at('image.digest')] },
  { name: 'a tag with a colon', values: { image: { tag: 'sha:abc' } }, expect: [SCHEMA, at('image.tag')] },
  { name: 'a repository with a tag in it', values: { image: { repository: 'ghcr.io/acme/relay:1.0' } }, expect: [SCHEMA, at('image.repository')] },
  { name: 'an unknown pull policy', values: { image: { pullPolicy: 'Sometimes' } }, expect: [SCHEMA, at('image.pullPolicy')] },

  // typos
  { name: 'a typo at the top level', values: { replicaCont: 2 }, expect: [SCHEMA, /replicaCont/, /additional propert/i] },
  { name: 'a typo inside relay', values: { relay: { wokers: 2 } }, expect: [SCHEMA, /wokers/, /additional propert/i] },
  { name: 'a typo inside gpuExternalName.headless', values: { gpuExternalName: { headless: { endpoint: ['192.168.1.50'] } } }, expect: [SCHEMA, /endpoint/, /additional propert/i] },
  { name: 'a typo inside networkPolicy', values: { networkPolicy: { egressCIDRs: ['192.168.1.50/32'] } }, expect: [SCHEMA, /egressCIDRs/, /additional propert/i] },

  // ports and numbers
  { name: 'relay.port above 65535', values: { relay: { port: 70000 } }, expect: [SCHEMA, at('relay.port')] },
  { name: 'relay.port 0', values: { relay: { port: 0 } }, expect: [SCHEMA, at('relay.port')] },
  { name: 'relay.port given as a string', values: { relay: { port: '5010' } }, expect: [SCHEMA, at('relay.port'), /string/] },
  { name: 'relay.port given as a string with --set-string', options: { args: ['--set-string', 'relay.port=5010'] }, expect: [SCHEMA, at('relay.port'), /string/] },
  { name: 'service.port out of range', values: { service: { port: 0 } }, expect: [SCHEMA, at('service.port')] },
  { name: 'relay.workers above 64', values: { relay: { workers: 65 } }, expect: [SCHEMA, at('relay.workers')] },
  { name: 'relay.workers as a fraction', values: { relay: { workers: 1.5 } }, expect: [SCHEMA, at('relay.workers')] },
  { name: 'a negative shutdown delay', values: { relay: { shutdownDelaySeconds: -1 } }, expect: [SCHEMA, at('relay.shutdownDelaySeconds')] },
  { name: 'an upstream timeout of 0', values: { relay: { upstreamTimeoutSeconds: 0 } }, expect: [SCHEMA, at('relay.upstreamTimeoutSeconds')] },
  { name: 'an unknown log level', values: { relay: { logLevel: 'verbose' } }, expect: [SCHEMA, at('relay.logLevel')] },
  { name: 'a metrics token key with a slash', values: { relay: { metricsToken: { existingSecret: 's', key: 'a/b' } } }, expect: [SCHEMA, at('relay.metricsToken.key')] },
  { name: 'a grace period not longer than delay + timeout', values: { terminationGracePeriodSeconds: 25 }, expect: [/terminationGracePeriodSeconds=25 must exceed relay\.shutdownDelaySeconds \+ relay\.shutdownTimeoutSeconds \(25\)/] },
  { name: 'a grace period shorter than a long drain', values: { relay: { shutdownTimeoutSeconds: 90.5 }, terminationGracePeriodSeconds: 60 }, expect: [/terminationGracePeriodSeconds=60 must exceed .* \(95\.5\)/] },

  // overload protection (relay.limits)
  { name: 'a negative relay.limits.maxConcurrent', values: { relay: { limits: { maxConcurrent: -1 } } }, expect: [SCHEMA, at('relay.limits.maxConcurrent'), /minimum/] },
  { name: 'a negative relay.limits.queueLimit', values: { relay: { limits: { queueLimit: -5 } } }, expect: [SCHEMA, at('relay.limits.queueLimit'), /minimum/] },
  { name: 'a queue timeout of 0', values: { relay: { limits: { queueTimeoutSeconds: 0 } } }, expect: [SCHEMA, at('relay.limits.queueTimeoutSeconds'), /exclusiveMinimum/] },
  { name: 'a queue timeout above a day', values: { relay: { limits: { queueTimeoutSeconds: 86401 } } }, expect: [SCHEMA, at('relay.limits.queueTimeoutSeconds'), /maximum/] },
  { name: 'a negative per-client limit', values: { relay: { limits: { maxConcurrentPerClient: -2 } } }, expect: [SCHEMA, at('relay.limits.maxConcurrentPerClient')] },
  { name: 'a fractional rate limit', values: { relay: { limits: { rateLimit: 1.5 } } }, expect: [SCHEMA, at('relay.limits.rateLimit'), /integer/] },
  { name: 'a rate limit above the relay\'s maximum', values: { relay: { limits: { rateLimit: 1000000001 } } }, expect: [SCHEMA, at('relay.limits.rateLimit'), /maximum/] },
  { name: 'a rate-limit window of 0', values: { relay: { limits: { rateLimitWindowSeconds: 0 } } }, expect: [SCHEMA, at('relay.limits.rateLimitWindowSeconds'), /exclusiveMinimum/] },
  { name: 'a negative rate-limit window', values: { relay: { limits: { rateLimitWindowSeconds: -60 } } }, expect: [SCHEMA, at('relay.limits.rateLimitWindowSeconds')] },
  { name: 'an event-loop delay above 60000 ms', values: { relay: { limits: { maxEventLoopDelayMs: 60001 } } }, expect: [SCHEMA, at('relay.limits.maxEventLoopDelayMs'), /maximum/] },
  { name: 'an event-loop delay in seconds as a fraction', values: { relay: { limits: { maxEventLoopDelayMs: 0.5 } } }, expect: [SCHEMA, at('relay.limits.maxEventLoopDelayMs'), /integer/] },
  { name: 'a limit given as a string', values: { relay: { limits: { maxConcurrent: '4' } } }, expect: [SCHEMA, at('relay.limits.maxConcurrent'), /string/] },
  { name: 'a limit removed with null (it would fall back to the relay\'s default, off)', values: { relay: { limits: { rateLimit: null } } }, expect: [SCHEMA, at('relay.limits'), /rateLimit/] },
  { name: 'relay.limits removed with null', values: { relay: { limits: null } }, expect: [SCHEMA, at('relay'), /limits/] },
  { name: 'a typo inside relay.limits', values: { relay: { limits: { maxConcurent: 4 } } }, expect: [SCHEMA, /maxConcurent/, /additional propert/i] },
  { name: 'extraEnv overriding a limit the chart sets', values: { extraEnv: [{ name: 'RELAY_RATE_LIMIT', value: '0' }] }, expect: [/extraEnv sets RELAY_RATE_LIMIT, which the chart sets from its values/] },

  // redis
  { name: 'a Redis URL pasted into redis.existingSecret (it carries the password)', values: { redis: { existingSecret: 'redis://:hunter2@redis-master.redis:6379' } }, expect: [/redis\.existingSecret holds a URL, but it must name a Secret that holds the URL, never the URL itself .*kubectl -n tokenplace create secret generic relay-redis --from-literal=url='redis:\/\/:PASSWORD@redis-master\.redis:6379', then --set redis\.existingSecret=relay-redis/] },
  { name: 'a redis.existingSecret that is no Secret name', values: { redis: { existingSecret: 'Relay_Redis' } }, expect: [/redis\.existingSecret is not a Secret name \(lower-case letters, digits, '-' and '\.'\): it names the Secret that holds the Redis URL/] },
  { name: 'redis.key with a slash', values: { redis: { existingSecret: 'relay-redis', key: 'redis/url' } }, expect: [SCHEMA, at('redis.key')] },
  { name: 'redis.key removed with null while redis.existingSecret is set', values: { redis: { existingSecret: 'relay-redis', key: null } }, expect: [SCHEMA, at('redis'), /key/] },
  { name: 'redis.port 0', values: { redis: { port: 0 } }, expect: [SCHEMA, at('redis.port'), /minimum/] },
  { name: 'redis.port above 65535', values: { redis: { port: 65536 } }, expect: [SCHEMA, at('redis.port'), /maximum/] },
  { name: 'redis.port as a string', values: { redis: { port: '6379' } }, expect: [SCHEMA, at('redis.port'), /string/] },
  { name: 'a redis.url value (the URL only comes from a Secret)', values: { redis: { url: 'redis://redis-master.redis:6379' } }, expect: [SCHEMA, /additional propert/i, /'url'/] },
  { name: 'networkPolicy.redisPeers as one peer instead of a list', values: { networkPolicy: { redisPeers: { podSelector: { matchLabels: { app: 'redis' } } } } }, expect: [SCHEMA, at('networkPolicy.redisPeers')] },
  { name: 'networkPolicy.redisPeers with a bare CIDR', values: { networkPolicy: { redisPeers: ['192.168.1.60/32'] } }, expect: [SCHEMA, at('networkPolicy.redisPeers.0')] },
  { name: 'networkPolicy.redisPeers with an unknown peer field', values: { networkPolicy: { redisPeers: [{ serviceSelector: { app: 'redis' } }] } }, expect: [SCHEMA, at('networkPolicy.redisPeers.0')] },
  { name: 'networkPolicy.redisPeers with an ipBlock that is no CIDR', values: { networkPolicy: { redisPeers: [{ ipBlock: { cidr: 'redis.lan' } }] } }, expect: [SCHEMA, at('networkPolicy.redisPeers.0')] },
  { name: 'extraEnv setting RELAY_REDIS_URL', values: { extraEnv: [{ name: 'RELAY_REDIS_URL', value: 'redis://:pw@redis:6379' }] }, expect: [/extraEnv sets RELAY_REDIS_URL, which the chart sets from its values .*\(redis\.existingSecret names the Secret that holds it\)/] },

  // trust proxy
  { name: 'relay.trustProxy trusting everyone', values: { relay: { trustProxy: ['0.0.0.0/0'] } }, expect: [/relay\.trustProxy: 0\.0\.0\.0\/0 would trust every client's X-Forwarded-For/] },
  { name: 'relay.trustProxy with a host name', values: { relay: { trustProxy: ['traefik'] } }, expect: [SCHEMA, at('relay.trustProxy.0')] },

  // ingress
  { name: 'ingress enabled without TLS', values: { ingress: { enabled: true, tls: [] } }, expect: [/ingress\.enabled=true without ingress\.tls: the relay would be served over plain HTTP/] },
  { name: 'an ingress host missing from tls', values: { ingress: { hosts: [{ host: 'relay.token.place', paths: [{ path: '/', pathType: 'Prefix' }] }], tls: [{ secretName: 'tls', hosts: ['other.token.place'] }] } }, expect: [/ingress host relay\.token\.place is not listed in any ingress\.tls\[\]\.hosts/] },
  { name: 'an ingress host two labels below a wildcard', values: { ingress: { hosts: [{ host: 'a.relay.mydomain.org' }], tls: [{ hosts: ['*.mydomain.org'] }] } }, expect: [/ingress host a\.relay\.mydomain\.org is not listed in any ingress\.tls\[\]\.hosts: .*add it or a wildcard one label above it, \*\.relay\.mydomain\.org, e\.g\. --set ingress\.tls\[0\]\.hosts\[0\]=a\.relay\.mydomain\.org \(a wildcard covers exactly one label/] },
  { name: 'the apex of a wildcard', values: { ingress: { hosts: [{ host: 'mydomain.org' }], tls: [{ hosts: ['*.mydomain.org'] }] } }, expect: [/ingress host mydomain\.org is not listed in any ingress\.tls\[\]\.hosts: it would be served without TLS; add it, e\.g\./] },
  { name: 'an ingress path without a path', values: { ingress: { hosts: [{ host: 'relay.token.place', paths: [{ pathType: 'Prefix' }] }], tls: [{ hosts: ['relay.token.place'] }] } }, expect: [SCHEMA, at('ingress.hosts.0.paths.0')] },
  { name: 'ingress enabled without hosts', values: { ingress: { hosts: [] } }, expect: [/ingress\.enabled=true but ingress\.hosts is empty/] },
  { name: 'an ingress path type typo', values: { ingress: { hosts: [{ host: 'relay.example.com', paths: [{ path: '/', pathType: 'prefix' }] }] } }, expect: [SCHEMA, at('ingress.hosts.0.paths.0.pathType')] },

  // env, labels
  { name: 'extraEnv overriding a variable the chart sets', values: { extraEnv: [{ name: 'UPSTREAM_URL', value: 'http://x:1' }] }, expect: [/extraEnv sets UPSTREAM_URL, which the chart sets from its values/] },
  { name: 'extraEnv with an empty value', values: { extraEnv: [{ name: 'RELAY_METRICS_MAX_ENDPOINTS', value: '' }] }, expect: [SCHEMA, at('extraEnv.0')] },
  { name: 'extraEnv with a number value', values: { extraEnv: [{ name: 'RELAY_METRICS_MAX_ENDPOINTS', value: 50 }] }, expect: [SCHEMA, at('extraEnv.0')] },
  { name: 'extraEnv setting a name twice', values: { extraEnv: [{ name: 'A', value: '1' }, { name: 'A', value: '2' }] }, expect: [/extraEnv sets A twice/] },
  { name: 'podLabels overriding a selector label', values: { podLabels: { 'app.kubernetes.io/component': 'x' } }, expect: [/podLabels may not set app\.kubernetes\.io\/component/] },

  // scaling, monitoring
  { name: 'autoscaling.minReplicas above maxReplicas', values: { autoscaling: { enabled: true, minReplicas: 5, maxReplicas: 2 } }, expect: [/autoscaling\.minReplicas=5 is greater than autoscaling\.maxReplicas=2/] },
  { name: 'autoscaling without a target', values: { autoscaling: { enabled: true, targetCPUUtilizationPercentage: null } }, expect: [/autoscaling\.enabled=true needs autoscaling\.targetCPUUtilizationPercentage or autoscaling\.targetMemoryUtilizationPercentage/] },
  { name: 'a PDB with neither bound', values: { replicaCount: 2, podDisruptionBudget: { maxUnavailable: null } }, expect: [/podDisruptionBudget\.enabled=true needs podDisruptionBudget\.maxUnavailable or podDisruptionBudget\.minAvailable/] },
  { name: 'a PDB percentage above 100%', values: { podDisruptionBudget: { maxUnavailable: '150%' } }, expect: [SCHEMA, at('podDisruptionBudget.maxUnavailable')] },
  { name: 'a scrape timeout longer than the interval', values: { metrics: { serviceMonitor: { enabled: true, interval: '30s', scrapeTimeout: '1m' } } }, expect: [/metrics\.serviceMonitor\.scrapeTimeout=1m is longer than metrics\.serviceMonitor\.interval=30s/] },
  { name: 'a ServiceMonitor namespace that is not a DNS label', values: { metrics: { serviceMonitor: { namespace: 'Monitoring' } } }, expect: [SCHEMA, at('metrics.serviceMonitor.namespace')] },
  { name: 'a jobLabel that is no label key', values: { metrics: { serviceMonitor: { jobLabel: 'app name' } } }, expect: [SCHEMA, at('metrics.serviceMonitor.jobLabel')] },
  { name: 'honorLabels as a string', values: { metrics: { serviceMonitor: { honorLabels: 'yes' } } }, expect: [SCHEMA, at('metrics.serviceMonitor.honorLabels')] },
  { name: 'relabelings as a map', values: { metrics: { serviceMonitor: { relabelings: { targetLabel: 'x' } } } }, expect: [SCHEMA, at('metrics.serviceMonitor.relabelings')] },
  { name: 'a scrape interval without a unit', values: { metrics: { serviceMonitor: { interval: '30' } } }, expect: [SCHEMA, at('metrics.serviceMonitor.interval')] },

  // alerts and dashboard (issue 12)
  { name: 'a PrometheusRule without the ServiceMonitor whose targets it watches', values: { metrics: { prometheusRule: { enabled: true } } }, expect: [/metrics\.prometheusRule\.enabled=true needs metrics\.serviceMonitor\.enabled=true: the alerts watch the targets the chart's ServiceMonitor creates \(their job and namespace\)/] },
  { name: 'a PrometheusRule with every alert disabled', values: RULE({ alerts: Object.fromEntries(['RelayDown', 'RelayUpstreamUnreachable', 'RelayNotReady', 'RelayHighErrorRate', 'RelaySlowFirstByte', 'RelayOverloaded', 'RelayRateLimitStoreDown'].map((a) => [a, { enabled: false }])) }), expect: [/every alert under metrics\.prometheusRule\.alerts is disabled: enable one, or set metrics\.prometheusRule\.enabled=false/] },
  { name: 'a rate window shorter than two scrape intervals', values: RULE({ rateWindow: '1m' }, { interval: '45s', scrapeTimeout: '10s' }), expect: [/metrics\.prometheusRule\.rateWindow=1m is shorter than twice metrics\.serviceMonitor\.interval=45s: rate\(\) needs two samples in its window, so the alerts would never fire; use at least 90s/] },
  { name: 'a rate window shorter than two sub-second scrape intervals', values: RULE({ rateWindow: '1s' }, { interval: '750ms', scrapeTimeout: '500ms' }), expect: [/use at least 1500ms/] },
  { name: 'a rate window without a unit', values: RULE({ rateWindow: '300' }), expect: [SCHEMA, at('metrics.prometheusRule.rateWindow')] },
  { name: 'an error-rate threshold of 0 (fires on the first 5xx)', values: RULE({ alerts: { RelayHighErrorRate: { threshold: 0 } } }), expect: [SCHEMA, at('metrics.prometheusRule.alerts.RelayHighErrorRate.threshold')] },
  { name: 'an error-rate threshold of 1 (a share never exceeds it)', values: RULE({ alerts: { RelayHighErrorRate: { threshold: 1 } } }), expect: [SCHEMA, at('metrics.prometheusRule.alerts.RelayHighErrorRate.threshold')] },
  { name: 'an error-rate threshold given in percent', values: RULE({ alerts: { RelayHighErrorRate: { threshold: 5 } } }), expect: [SCHEMA, at('metrics.prometheusRule.alerts.RelayHighErrorRate.threshold')] },
  { name: 'an error-rate threshold as a string', values: RULE({ alerts: { RelayHighErrorRate: { threshold: '5%' } } }), expect: [SCHEMA, at('metrics.prometheusRule.alerts.RelayHighErrorRate.threshold')] },
  { name: 'an overload threshold of 1', values: RULE({ alerts: { RelayOverloaded: { threshold: 1 } } }), expect: [SCHEMA, at('metrics.prometheusRule.alerts.RelayOverloaded.threshold')] },
  { name: 'a first-byte threshold of 300 s (the largest bucket: the p95 never exceeds it)', values: RULE({ alerts: { RelaySlowFirstByte: { thresholdSeconds: 300 } } }), expect: [SCHEMA, at('metrics.prometheusRule.alerts.RelaySlowFirstByte.thresholdSeconds')] },
  { name: 'a first-byte threshold of 0', values: RULE({ alerts: { RelaySlowFirstByte: { thresholdSeconds: 0 } } }), expect: [SCHEMA, at('metrics.prometheusRule.alerts.RelaySlowFirstByte.thresholdSeconds')] },
  { name: 'an unknown rejection reason', values: RULE({ alerts: { RelayOverloaded: { reasons: ['queue_full', 'gpu_busy'] } } }), expect: [SCHEMA, at('metrics.prometheusRule.alerts.RelayOverloaded.reasons.1')] },
  { name: 'a rejection reason twice', values: RULE({ alerts: { RelayOverloaded: { reasons: ['queue_full', 'queue_full'] } } }), expect: [SCHEMA, at('metrics.prometheusRule.alerts.RelayOverloaded.reasons')] },
  { name: 'a for duration in words', values: RULE({ alerts: { RelayDown: { for: '5 minutes' } } }), expect: [SCHEMA, at('metrics.prometheusRule.alerts.RelayDown.for')] },
  { name: 'an unknown severity', values: RULE({ alerts: { RelayDown: { severity: 'page' } } }), expect: [SCHEMA, at('metrics.prometheusRule.alerts.RelayDown.severity')] },
  { name: 'an alert name the chart does not have', values: RULE({ alerts: { RelayDwn: { enabled: false } } }), expect: [SCHEMA, /RelayDwn/, /additional propert/i] },
  { name: 'a threshold on an alert that has none', values: RULE({ alerts: { RelayDown: { threshold: 0.5 } } }), expect: [SCHEMA, /threshold/, /additional propert/i] },
  { name: 'a runbook URL with an anchor of its own', values: RULE({ runbookUrl: 'https://wiki.lab/relay#alerts' }), expect: [SCHEMA, at('metrics.prometheusRule.runbookUrl')] },
  { name: 'a runbook URL without a scheme', values: RULE({ runbookUrl: 'wiki.lab/relay' }), expect: [SCHEMA, at('metrics.prometheusRule.runbookUrl')] },
  { name: 'a PrometheusRule label value with a space', values: RULE({ labels: { release: 'kube prometheus' } }), expect: [SCHEMA, at('metrics.prometheusRule.labels.release')] },
  { name: 'a PrometheusRule namespace that is not a DNS label', values: RULE({ namespace: 'Monitoring' }), expect: [SCHEMA, at('metrics.prometheusRule.namespace')] },
  { name: 'a threshold removed with null from an enabled alert', values: RULE({ alerts: { RelayHighErrorRate: { threshold: null } } }), expect: [SCHEMA, at('metrics.prometheusRule.alerts.RelayHighErrorRate'), /threshold/] },
  { name: 'a for duration removed with null from an enabled alert', values: RULE({ alerts: { RelayDown: { for: null } } }), expect: [SCHEMA, at('metrics.prometheusRule.alerts.RelayDown'), /for/] },
  { name: 'the rate window removed with null', values: RULE({ rateWindow: null }), expect: [SCHEMA, at('metrics.prometheusRule'), /rateWindow/] },
  { name: 'every alert removed with null', values: RULE({ alerts: null }), expect: [/every alert under metrics\.prometheusRule\.alerts is disabled/] },
  { name: 'a dashboard label value that is a number', values: { metrics: { dashboard: { enabled: true, labels: { grafana_dashboard: 1 } } } }, expect: [SCHEMA, at('metrics.dashboard.labels.grafana_dashboard')] },
  { name: 'a dashboard namespace that is not a DNS label', values: { metrics: { dashboard: { enabled: true, namespace: 'Grafana Dashboards' } } }, expect: [SCHEMA, at('metrics.dashboard.namespace')] },
  { name: 'a typo inside metrics.dashboard', values: { metrics: { dashboard: { enable: true } } }, expect: [SCHEMA, /enable/, /additional propert/i] },
  { name: 'a resource quantity typo', values: { resources: { limits: { memory: '512 MB' } } }, expect: [SCHEMA, at('resources.limits.memory')] },
  { name: 'a probe field the chart does not own', values: { readinessProbe: { httpGet: { path: '/' } } }, expect: [SCHEMA, /httpGet/] }
]

describe('values that must be refused', { concurrency: true }, () => {
  for (const c of CASES) {
    it(c.name, async () => {
      const error = await renderError(c.values ?? {}, c.options)
      for (const pattern of c.expect) assert.match(error, pattern)
    })
  }
})
