// NOTES.txt, as `helm install --dry-run=client` prints it: how to reach the relay, the DNS check, and a
// loud warning while placeholder values are in use.
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { ISSUE_INSTALL_SET_ARGS, NAMESPACE, RELEASE, renderNotes } from '../helpers/chart-helm.js'
import { REAL_VALUES } from '../helpers/chart-cases.js'

const WARNING = /WARNING: PLACEHOLDER VALUES ARE STILL IN USE/

describe('NOTES.txt', { concurrency: true }, () => {
  it('warns loudly about every placeholder of the default install', async () => {
    const notes = await renderNotes({}, ISSUE_INSTALL_SET_ARGS)
    assert.match(notes, WARNING)
    assert.match(notes, /gpuExternalName\.host=gpu-box\.example\.com is an example name/)
    assert.match(notes, /networkPolicy\.egressCidrs has 203\.0\.113\.7\/32, a documentation range/)
    assert.match(notes, /ingress host relay\.example\.com is an example name/)
    assert.match(notes, /image\.repository=ghcr\.io\/your-org\/tokenplace-relay still names the example organisation/)
  })

  it('flags each documentation range (192.0.2.0/24, 198.51.100.0/24, 203.0.113.0/24) in egressCidrs and headless endpoints', async () => {
    const notes = await renderNotes({
      ...REAL_VALUES,
      networkPolicy: { egressCidrs: ['192.0.2.10/32', '198.51.100.0/24'] },
      gpuExternalName: { headless: { enabled: true, endpoints: ['203.0.113.50'] } }
    })
    assert.match(notes, WARNING)
    assert.match(notes, /egressCidrs has 192\.0\.2\.10\/32/)
    assert.match(notes, /egressCidrs has 198\.51\.100\.0\/24/)
    assert.match(notes, /headless\.endpoints has 203\.0\.113\.50, a documentation address/)
    assert.doesNotMatch(notes, /gpuExternalName\.host=/, 'the host is not used in headless mode')
  })

  it('has no warning once real values are set, and says how to reach and check the relay', async () => {
    const notes = await renderNotes(REAL_VALUES, ['--set', 'image.repository=ghcr.io/tokenplace/tokenplace-relay', '--set', 'image.tag=sha-abc1234'])
    assert.doesNotMatch(notes, WARNING)
    assert.match(notes, /https:\/\/relay\.token\.place\//)
    assert.ok(notes.includes(`kubectl -n ${NAMESPACE} port-forward svc/${RELEASE}-tokenplace-relay 8080:5010`))
    assert.ok(notes.includes(`kubectl run -n ${NAMESPACE} dns-test --rm -it --image=ghcr.io/tokenplace/tokenplace-relay:sha-abc1234 --restart=Never --command -- nslookup gpu-server`))
    assert.ok(notes.includes(`helm test ${RELEASE} -n ${NAMESPACE}`))
    assert.match(notes, /\/metrics is served on the same port, so anyone can read it through the Ingress/)
  })

  it('does not warn about an open /metrics once a token is set or without an Ingress', async () => {
    const [token, noIngress] = await Promise.all([
      renderNotes({ ...REAL_VALUES, relay: { metricsToken: { existingSecret: 'relay-metrics' } } }),
      renderNotes({ ...REAL_VALUES, ingress: { enabled: false } })
    ])
    assert.doesNotMatch(token, /anyone can read it/)
    assert.doesNotMatch(noIngress, /anyone can read it/)
    assert.doesNotMatch(noIngress, /https:\/\//)
  })

  it('uses the pinned image and the GPU Service name in the DNS check', async () => {
    const digest = 'sha256:' + 'ab'.repeat(32)
    const notes = await renderNotes({ gpuExternalName: { name: 'gpu' }, upstream: { url: 'http://gpu:5010' }, image: { digest } })
    assert.ok(notes.includes(`--image=ghcr.io/tokenplace/tokenplace-relay@${digest} --restart=Never --command -- nslookup gpu`))
  })

  it('mentions the ServiceMonitor and its token when metrics are on', async () => {
    const notes = await renderNotes({ ...REAL_VALUES, relay: { metricsToken: { existingSecret: 'relay-metrics' } }, metrics: { serviceMonitor: { enabled: true } } })
    assert.match(notes, /ServiceMonitor "relay-tokenplace-relay" scrapes \/metrics every 30s with the bearer token from Secret "relay-metrics" \(key "token"\)/)
  })

  it('does not ask for the GPU host while upstream.url bypasses the GPU Service, but flags an example upstream host', async () => {
    const [bypass, example] = await Promise.all([
      renderNotes({ ...REAL_VALUES, gpuExternalName: { host: 'gpu-box.example.com' }, upstream: { url: 'https://gpu-box.lan.token.place:8443' } }),
      renderNotes({ ...REAL_VALUES, gpuExternalName: { enabled: false }, upstream: { url: 'https://gpu.example.com:8443' } })
    ])
    assert.doesNotMatch(bypass, WARNING)
    assert.match(bypass, /The GPU Service "gpu-server" is rendered but unused/)
    assert.match(example, WARNING)
    assert.match(example, /upstream\.url names gpu\.example\.com, an example name: set it to your GPU server's URL\./)
    assert.doesNotMatch(example, /unused/)
  })

  it('names every placeholder with the --set that replaces it', async () => {
    const notes = await renderNotes({})
    assert.ok(notes.includes('gpuExternalName.host=gpu-box.example.com is an example name: set it to your GPU host\'s DNS name, e.g. --set gpuExternalName.host=gpu-box.lan.your-domain.org'))
    assert.ok(notes.includes('networkPolicy.egressCidrs has 203.0.113.7/32, a documentation range: set your GPU host\'s IP, e.g. 192.168.1.50/32: --set networkPolicy.egressCidrs={192.168.1.50/32}.'))
    assert.ok(notes.includes('ingress host relay.example.com is an example name: set ingress.hosts and ingress.tls to your domain, e.g. --set ingress.hosts[0].host=relay.your-domain.org --set ingress.tls[0].hosts[0]=relay.your-domain.org.'))
  })

  it('says nothing of a placeholder once it is replaced, one at a time', async () => {
    const [host, cidr, ingress] = await Promise.all([
      renderNotes({}, ['--set', 'gpuExternalName.host=gpu-box.lan.token.place']),
      renderNotes({}, ['--set', 'networkPolicy.egressCidrs={192.168.1.50/32}']),
      renderNotes({}, ['--set', 'ingress.hosts[0].host=relay.token.place', '--set', 'ingress.tls[0].hosts[0]=relay.token.place'])
    ])
    const mentions = (notes: string): string[] => ['gpu-box.example.com', '203.0.113.7', 'relay.example.com'].filter((p) => notes.includes(p))
    assert.deepEqual(mentions(host), ['203.0.113.7', 'relay.example.com'])
    assert.deepEqual(mentions(cidr), ['gpu-box.example.com', 'relay.example.com'])
    assert.deepEqual(mentions(ingress), ['gpu-box.example.com', '203.0.113.7'])
  })

  it('flags an example name left in ingress.tls, which would fail the whole certificate', async () => {
    const notes = await renderNotes({ ...REAL_VALUES, ingress: { hosts: [{ host: 'relay.token.place' }], tls: [{ hosts: ['relay.token.place', 'relay.example.com'] }] } })
    assert.match(notes, WARNING)
    assert.match(notes, /ingress\.tls lists relay\.example\.com, an example name: cert-manager can't get a certificate for it, which fails the whole entry/)
  })

  const CHECK = /CHECK THESE SETTINGS/
  it('warns when the ServiceMonitor has no labels for kube-prometheus-stack to select it by, not once it has', async () => {
    const [bare, labelled] = await Promise.all([
      renderNotes({ ...REAL_VALUES, metrics: { serviceMonitor: { enabled: true } } }),
      renderNotes({ ...REAL_VALUES, metrics: { serviceMonitor: { enabled: true, labels: { release: 'kube-prometheus-stack' } } } })
    ])
    assert.match(bare, CHECK)
    assert.match(bare, /metrics\.serviceMonitor\.labels is empty: kube-prometheus-stack's Prometheus only selects ServiceMonitors labelled with its release .* --set metrics\.serviceMonitor\.labels\.release=kube-prometheus-stack\./)
    assert.doesNotMatch(labelled, CHECK)
  })

  it('warns when a NodePort or LoadBalancer Service sits behind a NetworkPolicy that admits only Traefik, Prometheus and the test pod', async () => {
    const [nodePort, loadBalancer, clusterIp, noPolicy, admitted] = await Promise.all([
      renderNotes({ ...REAL_VALUES, service: { type: 'NodePort' } }),
      renderNotes({ ...REAL_VALUES, service: { type: 'LoadBalancer' }, metrics: { serviceMonitor: { enabled: true, labels: { release: 'kps' } } } }),
      renderNotes(REAL_VALUES),
      renderNotes({ ...REAL_VALUES, service: { type: 'NodePort' }, networkPolicy: { enabled: false } }),
      renderNotes({ ...REAL_VALUES, service: { type: 'NodePort' }, networkPolicy: { egressCidrs: ['192.168.1.50/32'], extraIngress: [{ from: [{ ipBlock: { cidr: '192.168.1.0/24' } }] }] } })
    ])
    assert.match(nodePort, /service\.type=NodePort, but the NetworkPolicy admits only the ingress controller \(Traefik\) and the chart's test pod: connections through the node port are dropped\. Admit their sources with networkPolicy\.extraIngress/)
    assert.match(loadBalancer, /service\.type=LoadBalancer, but the NetworkPolicy admits only the ingress controller \(Traefik\), Prometheus and the chart's test pod: connections through the load balancer are dropped/)
    for (const notes of [clusterIp, noPolicy, admitted]) assert.doesNotMatch(notes, CHECK)
  })

  it('warns when an emptied peer list leaves the ingress controller, Prometheus or DNS out', async () => {
    const notes = await renderNotes({ ...REAL_VALUES, metrics: { serviceMonitor: { enabled: true, labels: { release: 'kps' } } } }, [
      '--set', 'networkPolicy.traefikPeers={}', '--set', 'networkPolicy.prometheusPeers=null', '--set', 'networkPolicy.dnsPeers={}'
    ])
    assert.match(notes, /networkPolicy\.traefikPeers is empty, so the NetworkPolicy admits no ingress controller/)
    assert.match(notes, /networkPolicy\.prometheusPeers is empty, so the NetworkPolicy admits no Prometheus/)
    assert.match(notes, /networkPolicy\.dnsPeers is empty, so the NetworkPolicy allows no DNS and the relay can't resolve gpu-server/)
  })

  it('warns that upstream.ca goes unused while the relay dials plain http', async () => {
    const [http, https] = await Promise.all([
      renderNotes({ ...REAL_VALUES, upstream: { ca: { existingConfigMap: 'gpu-ca' } } }),
      renderNotes({ ...REAL_VALUES, upstream: { url: 'https://gpu-server:5010', ca: { existingConfigMap: 'gpu-ca' } } })
    ])
    assert.match(http, /upstream\.ca is set, but the relay dials http:\/\/gpu-server:5010 over plain http, so the CA is never used/)
    assert.doesNotMatch(https, /CHECK THESE SETTINGS/)
  })

  it('a ServiceMonitor in another namespace: the notes say where, and that the token Secret must exist there too', async () => {
    const [token, noToken] = await Promise.all([
      renderNotes({ ...REAL_VALUES, relay: { metricsToken: { existingSecret: 'relay-metrics' } }, metrics: { serviceMonitor: { enabled: true, labels: { release: 'kps' }, namespace: 'monitoring' } } }),
      renderNotes({ ...REAL_VALUES, metrics: { serviceMonitor: { enabled: true, labels: { release: 'kps' }, namespace: 'monitoring' } } })
    ])
    assert.match(token, /ServiceMonitor "relay-tokenplace-relay" \(in namespace "monitoring"\) scrapes \/metrics every 30s with the bearer token/)
    assert.match(token, /Prometheus reads that Secret from the ServiceMonitor's namespace, so it must exist in "monitoring" too:\n\s+kubectl -n monitoring get secret relay-metrics/)
    assert.doesNotMatch(noToken, /must exist in/)
  })

  it('warns when metrics.serviceMonitor.jobLabel names no label of the relay\'s Service', async () => {
    const [wrong, right] = await Promise.all([
      renderNotes({ ...REAL_VALUES, metrics: { serviceMonitor: { enabled: true, labels: { release: 'kps' }, jobLabel: 'app' } } }),
      renderNotes({ ...REAL_VALUES, metrics: { serviceMonitor: { enabled: true, labels: { release: 'kps' }, jobLabel: 'app.kubernetes.io/name' } } })
    ])
    assert.match(wrong, /metrics\.serviceMonitor\.jobLabel=app is not a label of the relay's Service, so Prometheus names the job after the Service instead; use one it has: app\.kubernetes\.io\/component, /)
    assert.doesNotMatch(right, /CHECK THESE SETTINGS/)
  })

  const MONITORED = { ...REAL_VALUES, metrics: { serviceMonitor: { enabled: true, labels: { release: 'kps' } }, prometheusRule: { enabled: true, labels: { release: 'kps' } }, dashboard: { enabled: true } } }

  it('says which job the alerts watch, lists them, and where each is explained', async () => {
    const [plain, elsewhere] = await Promise.all([
      renderNotes(MONITORED),
      renderNotes({ ...MONITORED, metrics: { ...MONITORED.metrics, serviceMonitor: { enabled: true, labels: { release: 'kps' }, jobLabel: 'app.kubernetes.io/name' }, prometheusRule: { enabled: true, labels: { release: 'kps' }, namespace: 'monitoring', alerts: { RelayNotReady: { enabled: false } } } } })
    ])
    assert.doesNotMatch(plain, /CHECK THESE SETTINGS/)
    assert.ok(plain.includes(`Alerts: the PrometheusRule "${RELEASE}-tokenplace-relay" watches job="${RELEASE}-tokenplace-relay" in namespace "${NAMESPACE}"`))
    assert.match(plain, /with: RelayDown, RelayUpstreamUnreachable, RelayNotReady, RelayHighErrorRate, RelaySlowFirstByte, RelayOverloaded, RelayRateLimitStoreDown\.\n/)
    assert.ok(plain.includes('What each one means and what to do: its runbook_url, https://github.com/tokenplace/tokenplace-relay/blob/main/charts/tokenplace-relay/README.md#<its name in lower case>\n   (e.g. #relaydown)'))
    assert.ok(elsewhere.includes(`Alerts: the PrometheusRule "${RELEASE}-tokenplace-relay" (in namespace "monitoring") watches job="tokenplace-relay" in namespace "${NAMESPACE}"`))
    assert.match(elsewhere, /with: RelayDown, RelayUpstreamUnreachable, RelayHighErrorRate, RelaySlowFirstByte, RelayOverloaded, RelayRateLimitStoreDown\.\n/)
    assert.match(plain, /\n\nAlerts: /, 'a paragraph of its own')
  })

  it('says where the dashboard is, what loads it, and how to import it by hand', async () => {
    const notes = await renderNotes({ ...MONITORED, metrics: { ...MONITORED.metrics, dashboard: { enabled: true, namespace: 'monitoring' } } })
    assert.ok(notes.includes(`Dashboard: the ConfigMap "${RELEASE}-tokenplace-relay-dashboard" in namespace "monitoring" holds the Grafana dashboard "tokenplace-relay", labelled grafana_dashboard=1.`))
    assert.match(notes, /kube-prometheus-stack's Grafana sidecar loads the ConfigMaps labelled grafana_dashboard=1/)
    assert.ok(notes.includes(`kubectl -n monitoring get configmap ${RELEASE}-tokenplace-relay-dashboard -o jsonpath='{.data.tokenplace-relay\\.json}' > tokenplace-relay.json`))
    assert.match(notes, /\n\nDashboard: /)
    const off = await renderNotes(REAL_VALUES)
    assert.doesNotMatch(off, /Alerts:|Dashboard:/)
  })

  it('warns when Prometheus or Grafana would ignore the objects, or a relabeling moves the targets away from the alerts', async () => {
    const [unlabelled, relabelled, otherRelabeling] = await Promise.all([
      renderNotes({ ...MONITORED, metrics: { ...MONITORED.metrics, prometheusRule: { enabled: true } } }, ['--set', 'metrics.dashboard.labels=null']),
      renderNotes({ ...MONITORED, metrics: { ...MONITORED.metrics, serviceMonitor: { enabled: true, labels: { release: 'kps' }, relabelings: [{ targetLabel: 'cluster', replacement: 'lab' }, { targetLabel: 'job', replacement: 'relay' }] } } }),
      renderNotes({ ...MONITORED, metrics: { ...MONITORED.metrics, serviceMonitor: { enabled: true, labels: { release: 'kps' }, relabelings: [{ targetLabel: 'cluster', replacement: 'lab' }] } } })
    ])
    assert.match(unlabelled, /metrics\.prometheusRule\.labels is empty: kube-prometheus-stack's Prometheus only loads PrometheusRules labelled with its release .* --set metrics\.prometheusRule\.labels\.release=kube-prometheus-stack\./)
    assert.match(unlabelled, /metrics\.dashboard\.labels is empty, so no Grafana sidecar picks the dashboard ConfigMap up: .*--set metrics\.dashboard\.labels\.grafana_dashboard=1/)
    assert.match(unlabelled, /holds the Grafana dashboard "tokenplace-relay"\.\n/)
    assert.match(relabelled, /metrics\.serviceMonitor\.relabelings rewrites the job label, but the alerts select the targets by job=relay-tokenplace-relay and namespace=tokenplace/)
    assert.doesNotMatch(otherRelabeling, /CHECK THESE SETTINGS/, 'other relabelings are fine')
  })

  it('behind the Ingress, warns that an empty relay.trustProxy makes every client one for the per-client limits', async () => {
    const { relay: _relay, ...untrusted } = REAL_VALUES
    const [bare, trusted, noIngress, noPerClient, onlyRate] = await Promise.all([
      renderNotes(untrusted),
      renderNotes(REAL_VALUES),
      renderNotes({ ...untrusted, ingress: { enabled: false } }),
      renderNotes({ ...untrusted, relay: { limits: { maxConcurrentPerClient: 0, rateLimit: 0 } } }),
      renderNotes({ ...untrusted, relay: { limits: { maxConcurrentPerClient: 0, rateLimit: 100, rateLimitWindowSeconds: 30 } } })
    ])
    assert.match(bare, CHECK)
    assert.ok(bare.includes('relay.trustProxy is empty, so behind the Ingress every request comes from the ingress controller\'s address and the per-client limits (relay.limits.maxConcurrentPerClient, relay.limits.rateLimit) count all clients as one: 2 requests at once and 60 requests per 60 s for everybody together. Trust the ingress controller\'s pods, e.g. --set relay.trustProxy={10.42.0.0/16} on k3s'), bare)
    assert.match(onlyRate, /count all clients as one: 100 requests per 30 s for everybody together/)
    for (const notes of [trusted, noIngress, noPerClient]) assert.doesNotMatch(notes, /relay\.trustProxy is empty/)
    assert.doesNotMatch(trusted, CHECK)
  })

  it('says what the overload protection does with the chart\'s defaults, in a paragraph of its own', async () => {
    const notes = await renderNotes(REAL_VALUES)
    assert.ok(notes.includes([
      '\n\nOverload protection (relay.limits, per pod):',
      '   - GPU server: at most 4 requests at once (relay.limits.maxConcurrent); 20 more wait up to 30 s, then 503.',
      '   - Per client (an IP address, an IPv6 /64): 2 requests at once and 60 requests per 60 s, then 429.',
      '   - Load shedding: 503 while the relay\'s event loop lags more than 500 ms.',
      '   Refusals are counted in relay_rejected_requests_total by reason. How to size the limits: the chart README\'s "Overload protection".'
    ].join('\n')), notes)
    assert.doesNotMatch(notes, /per pod: |per pod too/, 'one replica: nothing to divide')
  })

  it('says what each limit turned off means, and when every limit is off', async () => {
    const [noQueue, off] = await Promise.all([
      renderNotes({ ...REAL_VALUES, relay: { ...REAL_VALUES.relay, limits: { queueLimit: 0, queueTimeoutSeconds: 2.5, maxEventLoopDelayMs: 0 } } }),
      renderNotes({ ...REAL_VALUES, relay: { ...REAL_VALUES.relay, limits: { maxConcurrent: 0, maxConcurrentPerClient: 0, rateLimit: 0, maxEventLoopDelayMs: 0 } } })
    ])
    assert.match(noQueue, /GPU server: at most 4 requests at once \(relay\.limits\.maxConcurrent\); none may wait: one more gets 503 at once\./)
    assert.doesNotMatch(noQueue, /Load shedding/)
    assert.match(off, /GPU server: no cap \(relay\.limits\.maxConcurrent=0\): every request goes straight to it, however many\./)
    assert.match(off, /Per client: no limit \(relay\.limits\.maxConcurrentPerClient=0, relay\.limits\.rateLimit=0\)\./)
    assert.match(off, /Every limit is off, so nothing stands between a burst and the GPU server/)
    assert.doesNotMatch(off, /Refusals are counted/)
  })

  it('with more than one replica, says the cap and the per-client limit are per pod and how to divide the GPU\'s slots', async () => {
    const REDIS = { existingSecret: 'relay-redis' }
    const [fixed, hpa, noCap] = await Promise.all([
      renderNotes({ ...REAL_VALUES, replicaCount: 3, redis: REDIS }),
      renderNotes({ ...REAL_VALUES, autoscaling: { enabled: true, minReplicas: 2, maxReplicas: 5 }, redis: REDIS, relay: { ...REAL_VALUES.relay, limits: { maxConcurrent: 1 } } }),
      renderNotes({ ...REAL_VALUES, replicaCount: 3, redis: REDIS, relay: { ...REAL_VALUES.relay, limits: { maxConcurrent: 0, maxConcurrentPerClient: 0 } } })
    ])
    assert.ok(fixed.includes('   - The cap is per pod: 3 replicas (replicaCount) x 4 = up to 12 requests at the GPU server at once. Set relay.limits.maxConcurrent to what the GPU serves well divided by the replicas (4 generations at once, 2 replicas: 2).'), fixed)
    assert.ok(fixed.includes('   - The per-client limit is per pod too: one client may hold up to 3 x 2 = 6 requests at once across the replicas.'))
    assert.match(hpa, /The cap is per pod: up to 5 replicas \(autoscaling\.maxReplicas\) x 1 = up to 5 requests at the GPU server at once\./)
    assert.doesNotMatch(noCap, /The cap is per pod|per pod too/)
    for (const notes of [fixed, hpa, noCap]) assert.doesNotMatch(notes, CHECK, 'Redis shares the rate limit: nothing to check')
  })

  it('warns that the rate limit is per replica without Redis, and says where it is counted with it', async () => {
    const [fixed, hpa, shared, one, noRate] = await Promise.all([
      renderNotes({ ...REAL_VALUES, replicaCount: 3 }),
      renderNotes({ ...REAL_VALUES, autoscaling: { enabled: true, minReplicas: 2, maxReplicas: 4 }, relay: { ...REAL_VALUES.relay, limits: { rateLimit: 30, rateLimitWindowSeconds: 10 } } }),
      renderNotes({ ...REAL_VALUES, replicaCount: 3, redis: { existingSecret: 'relay-redis', key: 'uri' } }),
      renderNotes(REAL_VALUES),
      renderNotes({ ...REAL_VALUES, replicaCount: 3, relay: { ...REAL_VALUES.relay, limits: { rateLimit: 0 } } })
    ])
    assert.match(fixed, CHECK)
    assert.ok(fixed.includes(`relay.limits.rateLimit=60 is counted by each pod and no Redis shares the count (redis.existingSecret is empty), so with 3 replicas (replicaCount) a client gets up to 180 requests per 60 s. Share it: kubectl -n ${NAMESPACE} create secret generic relay-redis --from-literal=url='redis://:PASSWORD@redis-master.redis:6379' and --set redis.existingSecret=relay-redis`), fixed)
    assert.match(hpa, /relay\.limits\.rateLimit=30 is counted by each pod .* so with up to 4 replicas \(autoscaling\.maxReplicas\) a client gets up to 120 requests per 10 s\./)
    assert.doesNotMatch(shared, CHECK)
    assert.match(shared, /The rate limit is counted in Redis \(RELAY_REDIS_URL from Secret "relay-redis", key "uri"\), shared by every pod; while Redis is unreachable the relay serves without it and counts relay_rate_limit_store_errors_total\./)
    for (const notes of [one, noRate]) assert.doesNotMatch(notes, /counted by each pod/)
    assert.doesNotMatch(one, /counted in Redis/)
  })

  it('warns when Redis is set but unused (no rate limit) or blocked (no networkPolicy.redisPeers)', async () => {
    const REDIS = { existingSecret: 'relay-redis' }
    const [unused, blocked, viaExtra, noPolicy, fine] = await Promise.all([
      renderNotes({ ...REAL_VALUES, redis: REDIS, relay: { ...REAL_VALUES.relay, limits: { rateLimit: 0 } } }),
      renderNotes({ ...REAL_VALUES, redis: REDIS }, ['--set', 'networkPolicy.redisPeers={}']),
      renderNotes({ ...REAL_VALUES, redis: REDIS, networkPolicy: { ...REAL_VALUES.networkPolicy, redisPeers: [], extraEgress: [{ to: [{ ipBlock: { cidr: '192.168.1.60/32' } }], ports: [{ port: 6379 }] }] } }),
      renderNotes({ ...REAL_VALUES, redis: REDIS, networkPolicy: { enabled: false, redisPeers: [] } }),
      renderNotes({ ...REAL_VALUES, redis: REDIS })
    ])
    assert.match(unused, /redis\.existingSecret=relay-redis is set, but relay\.limits\.rateLimit=0: Redis holds only the rate limit's counts, so the relay never connects to it\./)
    assert.match(blocked, /networkPolicy\.redisPeers is empty, so the NetworkPolicy blocks Redis: the relay serves without the rate limit and counts relay_rate_limit_store_errors_total\. .*the rule opens redis\.port=6379\./)
    for (const notes of [viaExtra, noPolicy, fine]) assert.doesNotMatch(notes, CHECK)
  })

  it('step 4 says what helm test checks: /healthz only, or the way to the GPU server with helmTest.upstreamPath', async () => {
    const [bare, upstream] = await Promise.all([renderNotes(REAL_VALUES), renderNotes({ ...REAL_VALUES, helmTest: { upstreamPath: '/' } })])
    assert.match(bare, /It does not reach the GPU server unless helmTest\.upstreamPath names a cheap GET of server\.py, e\.g\.\n\s+--set helmTest\.upstreamPath=\//)
    assert.match(upstream, /GET \/healthz, then GET \/ through the relay to the GPU server;/)
    assert.ok(upstream.includes(`helm test ${RELEASE} -n ${NAMESPACE} --logs`))
  })

  it('keeps its steps numbered and apart, with or without the DNS step', async () => {
    const [name, ip] = await Promise.all([
      renderNotes({ ...REAL_VALUES, metrics: { serviceMonitor: { enabled: true, labels: { release: 'kps' } } } }),
      renderNotes({ ...REAL_VALUES, upstream: { url: 'http://192.168.1.50:5010' }, gpuExternalName: { enabled: false }, helmTest: { upstreamPath: '/' } })
    ])
    assert.deepEqual([...name.matchAll(/^(\d)\. /gm)].map((m) => m[1]), ['1', '2', '3', '4'])
    assert.match(name, /\n\n4\. Run the chart's test/)
    assert.match(name, /\n\nMetrics: the ServiceMonitor/)
    assert.deepEqual([...ip.matchAll(/^(\d)\. /gm)].map((m) => m[1]), ['1', '2', '3'], 'no DNS step for an IP')
    assert.match(ip, /\n\n3\. Run the chart's test \(GET \/healthz, then GET \/ through the relay to the GPU server;/)
  })
})
