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
})
