// The chart as an operator tries it: `helm install --dry-run=client` with the one or two `--set`s they
// would type, checked for what gets installed and what the notes then tell them. No cluster is
// involved (KUBECONFIG=/dev/null); the objects are also checked against the Kubernetes schemas.
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { join } from 'node:path'
import { CHART_DIR, installDryRun, installDryRunError, type Installed } from '../helpers/chart-helm.js'
import { EXAMPLE_FILES } from '../helpers/chart-cases.js'
import { checkNamesAndLabels, validateObject } from '../helpers/chart-k8s.js'

function valid (installed: Installed): Installed {
  for (const object of installed.rendered.objects) {
    validateObject(object)
    checkNamesAndLabels(object)
  }
  return installed
}

async function install (args: string[], values: object = {}): Promise<Installed> {
  return valid(await installDryRun(values, args))
}

function egressPorts (installed: Installed): number[] {
  return installed.rendered.one('NetworkPolicy').spec.egress[0].ports.map((p: { port: number }) => p.port)
}

describe('upstream.url follows the GPU Service', { concurrency: true }, () => {
  it('--set gpuExternalName.port=8000 alone: the relay, the GPU Service and the NetworkPolicy all use 8000', async () => {
    const i = await install(['--set', 'gpuExternalName.port=8000'])
    assert.equal(i.rendered.env.UPSTREAM_URL, 'http://gpu-server:8000')
    assert.deepEqual(i.rendered.one('Service', 'gpu-server').spec.ports.map((p: { port: number }) => p.port), [8000])
    assert.deepEqual(egressPorts(i), [8000])
    assert.match(i.notes, /Upstream: http:\/\/gpu-server:8000 \(upstream\.url is empty: the GPU Service on gpuExternalName\.port\)/)
    assert.doesNotMatch(i.notes, /unused|dials port/)
  })

  it('--set gpuExternalName.name=gpu-alt alone: the relay dials the renamed Service, the DNS check names it', async () => {
    const i = await install(['--set', 'gpuExternalName.name=gpu-alt'])
    assert.equal(i.rendered.env.UPSTREAM_URL, 'http://gpu-alt:5010')
    assert.ok(i.rendered.has('Service', 'gpu-alt'))
    assert.equal(i.rendered.has('Service', 'gpu-server'), false)
    assert.match(i.notes, /-> ExternalName Service "gpu-alt" -> gpu-box\.example\.com/)
    assert.match(i.notes, /--command -- nslookup gpu-alt\n/)
  })

  it('an explicit upstream.url on another host, scheme and port wins; the notes say the GPU Service is unused', async () => {
    const i = await install(['--set', 'upstream.url=https://gpu-box.lan.token.place:8443/v1'])
    assert.equal(i.rendered.env.UPSTREAM_URL, 'https://gpu-box.lan.token.place:8443/v1')
    assert.deepEqual(egressPorts(i), [8443])
    assert.deepEqual(i.rendered.one('NetworkPolicy').spec.egress[0].to, [{ ipBlock: { cidr: '203.0.113.7/32' } }])
    assert.match(i.notes, /The GPU Service "gpu-server" is rendered but unused: upstream\.url names gpu-box\.lan\.token\.place, so the\n\s+relay dials that host directly\. Set gpuExternalName\.enabled=false to drop the Service\./)
    assert.match(i.notes, /nslookup gpu-box\.lan\.token\.place\n/)
    // The GPU Service's placeholder host no longer matters, so the notes do not ask for it.
    assert.doesNotMatch(i.notes, /gpuExternalName\.host=gpu-box\.example\.com/)
  })

  it('an explicit upstream.url on the GPU Service but another port: installed, the relay dials that port, the notes explain', async () => {
    const i = await install(['--set', 'upstream.url=http://gpu-server:8000'])
    assert.equal(i.rendered.env.UPSTREAM_URL, 'http://gpu-server:8000')
    assert.deepEqual(egressPorts(i), [8000])
    assert.match(i.notes, /The relay dials port 8000 \(from upstream\.url\) while the GPU Service declares\n\s+gpuExternalName\.port=5010/)
    assert.doesNotMatch(i.notes, /unused/)
  })

  it('the GPU Service off with an upstream.url: no GPU Service, nothing unused to report', async () => {
    const i = await install(['--set', 'gpuExternalName.enabled=false', '--set', 'upstream.url=http://192.168.1.50:5010'])
    assert.equal(i.rendered.all('Service').length, 1)
    assert.equal(i.rendered.env.UPSTREAM_URL, 'http://192.168.1.50:5010')
    assert.doesNotMatch(i.notes, /unused|nslookup/, 'no GPU Service, and an IP needs no DNS check')
  })

  it('headless mode with upstream.url elsewhere: the endpoint IPs are not the upstream, so they are not allowed', async () => {
    const i = await install([
      '--set', 'gpuExternalName.headless.enabled=true', '--set', 'gpuExternalName.headless.endpoints={192.168.1.50}',
      '--set', 'upstream.url=https://gpu-box.lan.token.place:8443', '--set', 'networkPolicy.egressCidrs={192.168.1.60/32}'
    ])
    assert.deepEqual(i.rendered.one('NetworkPolicy').spec.egress[0].to, [{ ipBlock: { cidr: '192.168.1.60/32' } }])
    assert.match(i.notes, /"gpu-server" is rendered but unused/)
  })
})

describe('ingress with --set', { concurrency: true }, () => {
  it('--set ingress.hosts[0].host=relay.mydomain.org with a wildcard TLS host: paths and secretName default, installed', async () => {
    const i = await install(['--set', 'ingress.hosts[0].host=relay.mydomain.org', '--set', 'ingress.tls[0].hosts[0]=*.mydomain.org'])
    const ing = i.rendered.one('Ingress')
    assert.deepEqual(ing.spec.rules, [{
      host: 'relay.mydomain.org',
      http: { paths: [{ path: '/', pathType: 'Prefix', backend: { service: { name: 'relay-tokenplace-relay', port: { name: 'http' } } } }] }
    }])
    assert.deepEqual(ing.spec.tls, [{ secretName: 'relay-tokenplace-relay-tls', hosts: ['*.mydomain.org'] }])
    assert.match(i.notes, /https:\/\/relay\.mydomain\.org\//)
  })
})

describe('the notes of a first install', { concurrency: true }, () => {
  it('the bare install names the three placeholders; a complete values file leaves no warning at all', async () => {
    const [bare, complete] = await Promise.all([
      install([]),
      install(['--set', 'gpuExternalName.host=gpu-box.lan.token.place', '--set', 'networkPolicy.egressCidrs={192.168.1.50/32}',
        '--set', 'ingress.hosts[0].host=relay.token.place', '--set', 'ingress.tls[0].hosts[0]=relay.token.place',
        '--set', 'relay.trustProxy={10.42.0.0/16}'])
    ])
    assert.match(bare.notes, /WARNING: PLACEHOLDER VALUES ARE STILL IN USE/)
    for (const placeholder of ['gpuExternalName.host=gpu-box.example.com', 'networkPolicy.egressCidrs has 203.0.113.7/32', 'ingress host relay.example.com']) {
      assert.ok(bare.notes.includes(placeholder), placeholder)
    }
    assert.doesNotMatch(complete.notes, /WARNING|CHECK THESE SETTINGS|example\.com|203\.0\.113/)
  })

  it('a NodePort Service with the ServiceMonitor on and no labels: both warnings, with what to set', async () => {
    const i = await install(['--set', 'service.type=NodePort', '--set', 'metrics.serviceMonitor.enabled=true'])
    assert.equal(i.rendered.relayService.spec.type, 'NodePort')
    assert.match(i.notes, /CHECK THESE SETTINGS/)
    assert.match(i.notes, /metrics\.serviceMonitor\.labels is empty/)
    assert.match(i.notes, /service\.type=NodePort, but the NetworkPolicy admits only the ingress controller \(Traefik\), Prometheus and the chart's test pod/)
  })
})

describe('overload protection with --set', { concurrency: true }, () => {
  const REAL = ['--set', 'gpuExternalName.host=gpu-box.lan.token.place', '--set', 'networkPolicy.egressCidrs={192.168.1.50/32}',
    '--set', 'ingress.hosts[0].host=relay.token.place', '--set', 'ingress.tls[0].hosts[0]=relay.token.place', '--set', 'relay.trustProxy={10.42.0.0/16}']

  it('two replicas: the notes warn that the rate limit is per replica; --set redis.existingSecret=relay-redis shares it and opens Redis', async () => {
    const [alone, shared] = await Promise.all([
      install([...REAL, '--set', 'replicaCount=2']),
      install([...REAL, '--set', 'replicaCount=2', '--set', 'relay.limits.maxConcurrent=2', '--set', 'redis.existingSecret=relay-redis'])
    ])
    assert.match(alone.notes, /CHECK THESE SETTINGS/)
    assert.match(alone.notes, /relay\.limits\.rateLimit=60 is counted by each pod .* with 2 replicas \(replicaCount\) a client gets up to 120 requests per 60 s/)
    assert.match(alone.notes, /The cap is per pod: 2 replicas \(replicaCount\) x 4 = up to 8 requests at the GPU server at once/)
    assert.equal(alone.rendered.env.RELAY_REDIS_URL, undefined)

    assert.doesNotMatch(shared.notes, /WARNING|CHECK THESE SETTINGS/)
    assert.match(shared.notes, /2 replicas \(replicaCount\) x 2 = up to 4 requests at the GPU server at once/)
    assert.equal(shared.rendered.env.RELAY_MAX_CONCURRENT, '2')
    assert.equal(shared.rendered.env.RELAY_REDIS_URL, 'secret:relay-redis/url')
    const redisRule = shared.rendered.one('NetworkPolicy').spec.egress.find((rule: any) => rule.ports?.[0]?.port === 6379)
    assert.deepEqual(redisRule?.to, [{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'redis' } }, podSelector: { matchLabels: { 'app.kubernetes.io/name': 'redis' } } }])
  })

  it('--set relay.limits.queueTimeoutSeconds=0 is refused before anything is installed', async () => {
    const error = await installDryRunError({}, ['--set', 'relay.limits.queueTimeoutSeconds=0'])
    assert.match(error, /relay\/limits\/queueTimeoutSeconds|relay\.limits\.queueTimeoutSeconds/)
  })
})

describe('the shipped examples', { concurrency: true }, () => {
  for (const file of EXAMPLE_FILES) {
    it(`examples/${file} installs with no placeholder left and nothing to check`, async () => {
      const i = await install(['-f', join(CHART_DIR, 'examples', file)])
      assert.doesNotMatch(i.notes, /WARNING|CHECK THESE SETTINGS|unused/)
    })
  }
})
