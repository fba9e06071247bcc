// The `helm test` pod: /healthz, then helmTest.upstreamPath through the relay to the GPU server. Its
// script (files/helm-test.mjs) is run exactly as rendered into the Pod, with node, against a real
// relay (built in this process) and real upstreams on loopback, and its diagnosis is checked for every
// way the relay reports an upstream failure (src/forward/upstream-errors.ts).
import { describe, it, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { createServer as createHttpServer, type Server } from 'node:http'
import { createServer as createNetServer, type AddressInfo, type Server as NetServer } from 'node:net'
import { once } from 'node:events'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { CHART_DIR, NAMESPACE, RELEASE, render, renderError, type K8sObject } from '../helpers/chart-helm.js'
import { REAL_VALUES } from '../helpers/chart-cases.js'
import { startRelay, type InProcessRelay } from '../helpers/relay.js'
import { refusedPort, startUpstream, type Upstream } from '../helpers/upstreams.js'
import { classifyUpstreamError } from '../../src/forward/upstream-errors.js'

const SCRIPT_FILE = join(CHART_DIR, 'files', 'helm-test.mjs')
const RELAY_URL = `http://${RELEASE}-tokenplace-relay.${NAMESPACE}.svc:5010`

interface Script {
  relayFailure: (body: string) => { kind: string, message: string } | undefined
  diagnose: (input: { status: number, body: string, target: { url: string, host: string, port: number }, path: string, probe?: { outcome: string, address?: string }, egressCidrs?: string[] }) => string
}
const script = await import(pathToFileURL(SCRIPT_FILE).href) as Script

function testContainer (pod: K8sObject): { command: string[], env: Record<string, string> } {
  const [c] = pod.spec.containers
  return { command: c.command, env: Object.fromEntries(c.env.map((e: { name: string, value: string }) => [e.name, e.value])) }
}

/** The relay's body for an upstream error with these codes, as src/plugins/proxy.ts sends it. */
function relayBody (...codes: string[]): { status: number, body: string } {
  let err: Error & { code?: string, cause?: unknown } | undefined
  for (const code of codes.reverse()) err = Object.assign(new Error(code), { code, cause: err })
  const failure = classifyUpstreamError(err)
  const error = failure.statusCode === 504 ? 'Gateway Timeout' : 'Bad Gateway'
  return { status: failure.statusCode, body: JSON.stringify({ statusCode: failure.statusCode, error, message: failure.message }) }
}

interface Run { code: number, stdout: string }

/** Runs the rendered script as the pod would, with its rendered env, the URLs pointed at loopback. */
function runPod (pod: K8sObject, env: Record<string, string>): Promise<Run> {
  const { command, env: rendered } = testContainer(pod)
  const [node, ...args] = command
  assert.equal(node, 'node')
  return new Promise((resolve) => {
    execFile(process.execPath, args, { env: { PATH: process.env.PATH ?? '', ...rendered, ATTEMPTS: '2', RETRY_SECONDS: '0', ...env }, timeout: 60_000 }, (err, stdout) => {
      resolve({ code: err === null ? 0 : Number(err.code), stdout })
    })
  })
}

async function listen (server: Server | NetServer): Promise<number> {
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  return (server.address() as AddressInfo).port
}

describe('the helm test pod', () => {
  it('runs files/helm-test.mjs as it is, and only /healthz while helmTest.upstreamPath is empty', async () => {
    const pod = (await render()).one('Pod')
    const { command, env } = testContainer(pod)
    assert.deepEqual(command.slice(0, 3), ['node', '--input-type=module', '--eval'])
    assert.equal(command[3]?.trim(), readFileSync(SCRIPT_FILE, 'utf8').trim())
    assert.deepEqual(env, { HEALTHZ_URL: `${RELAY_URL}/healthz`, ATTEMPTS: '5', RETRY_SECONDS: '3' })
  })

  it('with helmTest.upstreamPath: the URL through the relay, the upstream it goes to, and what the NetworkPolicy allows', async () => {
    const [externalName, headless, noPolicy, direct] = await Promise.all([
      render({ ...REAL_VALUES, helmTest: { upstreamPath: '/api/health?probe=helm' } }),
      render({ ...REAL_VALUES, helmTest: { upstreamPath: '/' }, gpuExternalName: { headless: { enabled: true, endpoints: ['192.168.1.50'] } }, networkPolicy: { egressCidrs: [] } }),
      render({ ...REAL_VALUES, helmTest: { upstreamPath: '/' }, networkPolicy: { enabled: false } }),
      render({ ...REAL_VALUES, helmTest: { upstreamPath: '/' }, upstream: { url: 'https://gpu-box.lan.token.place:8443/v1' } })
    ])
    assert.deepEqual(testContainer(externalName.one('Pod')).env, {
      HEALTHZ_URL: `${RELAY_URL}/healthz`,
      ATTEMPTS: '5',
      RETRY_SECONDS: '3',
      CHECK_URL: `${RELAY_URL}/api/health?probe=helm`,
      RELAY_UPSTREAM: 'http://gpu-server:5010',
      UPSTREAM_HOST: 'gpu-server',
      UPSTREAM_PORT: '5010',
      EGRESS_CIDRS: '192.168.1.50/32'
    })
    assert.equal(testContainer(headless.one('Pod')).env.EGRESS_CIDRS, '192.168.1.50/32')
    assert.equal(testContainer(noPolicy.one('Pod')).env.EGRESS_CIDRS, undefined)
    const env = testContainer(direct.one('Pod')).env
    assert.deepEqual([env.RELAY_UPSTREAM, env.UPSTREAM_HOST, env.UPSTREAM_PORT], ['https://gpu-box.lan.token.place:8443/v1', 'gpu-box.lan.token.place', '8443'])
  })

  it('refuses a helmTest.upstreamPath the relay answers itself', async () => {
    for (const path of ['/healthz', '/livez/', '/metrics?x=1']) {
      assert.match(await renderError({ helmTest: { upstreamPath: path } }), /helmTest\.upstreamPath=\S+ is answered by the relay itself, never by the GPU server, so it would prove nothing: choose a path server\.py answers, e\.g\. \//)
    }
    assert.match(await renderError({ helmTest: { upstreamPath: 'api/health' } }), /values don't meet the specifications of the schema/)
  })
})

describe('the helm test script against a real relay', () => {
  let pod: K8sObject
  let upstream: Upstream
  let failing: Upstream
  let relay: InProcessRelay
  let failingRelay: InProcessRelay
  let refusedRelay: InProcessRelay
  let closedPort: number

  before(async () => {
    pod = (await render({ ...REAL_VALUES, helmTest: { upstreamPath: '/' } })).one('Pod')
    upstream = await startUpstream()
    failing = await startUpstream((_req, res) => { res.writeHead(500, { 'content-type': 'text/plain' }).end('model not loaded') })
    closedPort = await refusedPort()
    relay = await startRelay({ UPSTREAM_URL: upstream.url, RELAY_LOG_LEVEL: 'silent' })
    failingRelay = await startRelay({ UPSTREAM_URL: failing.url, RELAY_LOG_LEVEL: 'silent' })
    refusedRelay = await startRelay({ UPSTREAM_URL: `http://127.0.0.1:${closedPort}`, RELAY_LOG_LEVEL: 'silent' })
  })

  after(async () => {
    await Promise.all([relay.close(), failingRelay.close(), refusedRelay.close(), upstream.close(), failing.close()])
  })

  const through = (r: InProcessRelay, path = '/'): Record<string, string> => ({ HEALTHZ_URL: `${r.url}/healthz`, CHECK_URL: `${r.url}${path}` })

  it('without an upstream path: passes on /healthz alone', async () => {
    const run = await runPod((await render()).one('Pod'), { HEALTHZ_URL: `${relay.url}/healthz` })
    assert.equal(run.code, 0, run.stdout)
    assert.match(run.stdout, /OK: the relay is ready\. Set helmTest\.upstreamPath to also check the way to the GPU server\./)
  })

  it('passes when the GPU server answers, with a 200 or with a 404', async () => {
    const [ok, notFound] = await Promise.all([runPod(pod, through(relay)), runPod(pod, through(relay, '/no-such-path'))])
    assert.equal(ok.code, 0, ok.stdout)
    assert.match(ok.stdout, /OK: GET http:\/\/127\.0\.0\.1:\d+\/ -> 200: the GPU server at http:\/\/gpu-server:5010 answered through the relay\./)
    assert.equal(notFound.code, 0, notFound.stdout)
    assert.match(notFound.stdout, /-> 404: the GPU server at .* answered through the relay/)
  })

  it('fails when nothing listens on the GPU host\'s port, and says to start server.py', async () => {
    const run = await runPod(pod, { ...through(refusedRelay), UPSTREAM_HOST: '127.0.0.1', UPSTREAM_PORT: String(closedPort) })
    assert.equal(run.code, 1, run.stdout)
    assert.match(run.stdout, new RegExp(`FAIL: the relay answered 502 \\("The upstream server refused the connection"\\): the GPU host 127\\.0\\.0\\.1 \\(127\\.0\\.0\\.1\\) is up but nothing accepts connections on port ${closedPort}: start server\\.py with --host 0\\.0\\.0\\.0 --port ${closedPort}`))
  })

  it('fails when server.py itself answers a 5xx, and says so', async () => {
    const run = await runPod(pod, through(failingRelay))
    assert.equal(run.code, 1, run.stdout)
    assert.match(run.stdout, /FAIL: the GPU server itself answered 500 to GET \/: see server\.py's log on the GPU host/)
  })

  it('fails when the relay never gets ready', async () => {
    const notReady = createHttpServer((_req, res) => { res.writeHead(503).end('{"status":"degraded","checks":{"upstream_dns":"failing"}}') })
    const port = await listen(notReady)
    try {
      const run = await runPod(pod, { HEALTHZ_URL: `http://127.0.0.1:${port}/healthz`, CHECK_URL: `http://127.0.0.1:${port}/` })
      assert.equal(run.code, 1, run.stdout)
      assert.match(run.stdout, /FAIL: the relay did not answer http:\/\/127\.0\.0\.1:\d+\/healthz with 200 \(503 "degraded": the GPU host's name does not resolve/)
    } finally {
      notReady.close()
    }
  })

  it('an egress CIDR that blocks the GPU host: the pod reaches it directly, the relay times out, the message names egressCidrs', async () => {
    // The relay's answer when the NetworkPolicy drops its SYNs (a connect timeout, which loopback can't
    // produce); the GPU host itself listens, and the test pod, outside the policy, reaches it.
    const { status, body } = relayBody('UND_ERR_CONNECT_TIMEOUT')
    const blocked = createHttpServer((req, res) => {
      if (req.url === '/healthz') res.writeHead(200).end('{"status":"ok"}')
      else res.writeHead(status, { 'content-type': 'application/json' }).end(body)
    })
    const gpu = createNetServer((socket) => socket.destroy())
    const [relayPort, gpuPort] = await Promise.all([listen(blocked), listen(gpu)])
    try {
      const run = await runPod(pod, { HEALTHZ_URL: `http://127.0.0.1:${relayPort}/healthz`, CHECK_URL: `http://127.0.0.1:${relayPort}/`, UPSTREAM_HOST: 'localhost', UPSTREAM_PORT: String(gpuPort) })
      assert.equal(run.code, 1, run.stdout)
      assert.match(run.stdout, new RegExp(`FAIL: the relay answered 504 \\("The upstream server did not accept the connection in time"\\): this test pod reaches the GPU host at (127\\.0\\.0\\.1|::1):${gpuPort} \\(localhost\\) directly, the relay does not, so the relay's NetworkPolicy blocks it: networkPolicy\\.egressCidrs \\(192\\.168\\.1\\.50/32\\) must include (127\\.0\\.0\\.1|::1), e\\.g\\. --set networkPolicy\\.egressCidrs=\\{(127\\.0\\.0\\.1|::1)/32\\}`))
    } finally {
      blocked.close()
      gpu.close()
    }
  })
})

describe('the helm test diagnosis', () => {
  const target = { url: 'http://gpu-server:5010', host: 'gpu-server', port: 5010 }
  const cidrs = ['203.0.113.7/32']

  it('recognises every failure the relay reports (src/forward/upstream-errors.ts)', () => {
    const kinds = Object.fromEntries([
      ['ENOTFOUND'], ['UND_ERR_CONNECT_TIMEOUT'], ['ECONNREFUSED'], ['EHOSTUNREACH'], ['CERT_HAS_EXPIRED'], ['UND_ERR_HEADERS_TIMEOUT'], ['HPE_INVALID_CONSTANT'], ['UND_ERR_HEADERS_OVERFLOW'], ['ECONNRESET']
    ].map(([code]) => [code, script.relayFailure(relayBody(code as string).body)?.kind]))
    assert.deepEqual(kinds, {
      ENOTFOUND: 'dns',
      UND_ERR_CONNECT_TIMEOUT: 'connect',
      ECONNREFUSED: 'connect',
      EHOSTUNREACH: 'connect',
      CERT_HAS_EXPIRED: 'tls',
      UND_ERR_HEADERS_TIMEOUT: 'timeout',
      HPE_INVALID_CONSTANT: 'protocol',
      UND_ERR_HEADERS_OVERFLOW: 'protocol',
      ECONNRESET: 'protocol'
    })
    assert.equal(script.relayFailure('{"message":"model not loaded"}'), undefined, 'not the relay\'s own error')
    assert.equal(script.relayFailure('<html>'), undefined)
  })

  it('a GPU box that is off: neither the relay nor the pod gets an answer', () => {
    for (const code of ['UND_ERR_CONNECT_TIMEOUT', 'EHOSTUNREACH']) {
      const text = script.diagnose({ ...relayBody(code), target, path: '/', probe: { outcome: 'unreachable', address: '192.168.1.50' }, egressCidrs: cidrs })
      assert.match(text, /the GPU host gpu-server \(192\.168\.1\.50\) does not answer on port 5010, neither to the relay nor to this test pod: it is off, asleep or unreachable from the cluster/)
    }
  })

  it('a NetworkPolicy that blocks the GPU host, or its DNS; no NetworkPolicy but still blocked', () => {
    const open = { outcome: 'open', address: '192.168.1.50' }
    assert.match(script.diagnose({ ...relayBody('UND_ERR_CONNECT_TIMEOUT'), target, path: '/', probe: open, egressCidrs: cidrs }),
      /the relay's NetworkPolicy blocks it: networkPolicy\.egressCidrs \(203\.0\.113\.7\/32\) must include 192\.168\.1\.50, e\.g\. --set networkPolicy\.egressCidrs=\{192\.168\.1\.50\/32\}/)
    assert.match(script.diagnose({ ...relayBody('UND_ERR_CONNECT_TIMEOUT'), target, path: '/', probe: open }), /something blocks the relay pods only \(another NetworkPolicy in the namespace\?\)/)
    assert.match(script.diagnose({ ...relayBody('ENOTFOUND'), target, path: '/', probe: open, egressCidrs: cidrs }),
      /this test pod resolves gpu-server \(to 192\.168\.1\.50\) but the relay cannot: its NetworkPolicy blocks DNS \(see networkPolicy\.allowDns and networkPolicy\.dnsPeers\)/)
    assert.match(script.diagnose({ ...relayBody('ENOTFOUND'), target, path: '/', probe: { outcome: 'dns' }, egressCidrs: cidrs }),
      /gpu-server does not resolve, for the relay or for this test pod: check the DNS record of the GPU host/)
  })

  it('TLS, a slow GPU server and a wrong scheme each get their own advice', () => {
    const https = { url: 'https://gpu-box.lan.token.place:8443', host: 'gpu-box.lan.token.place', port: 8443 }
    assert.match(script.diagnose({ ...relayBody('UNABLE_TO_VERIFY_LEAF_SIGNATURE'), target: https, path: '/' }),
      /TLS to https:\/\/gpu-box\.lan\.token\.place:8443 failed\. The GPU server's certificate must carry the name gpu-box\.lan\.token\.place \(the host of upstream\.url\) and be signed by a public CA or by the one in upstream\.ca/)
    assert.match(script.diagnose({ ...relayBody('UND_ERR_HEADERS_TIMEOUT'), target, path: '/' }), /did not answer within relay\.upstreamTimeoutSeconds; choose a cheaper helmTest\.upstreamPath/)
    assert.match(script.diagnose({ ...relayBody('HPE_INVALID_CONSTANT'), target: https, path: '/' }), /check that upstream\.url's scheme \(https\) is the one server\.py speaks/)
  })
})
