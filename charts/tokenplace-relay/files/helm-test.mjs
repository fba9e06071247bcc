// `helm test`: proves the way from the relay's Service to the GPU server. The chart inlines this file
// into its test pod, which runs the relay image itself (it has node: no other image to pull).
//
//   1. GET /healthz through the relay's Service until it answers 200: the relay is up and ready.
//   2. With helmTest.upstreamPath set, GET that path through the relay. An answer below 500 came from
//      the GPU server, whatever it says (a 404 or 405 from server.py proves the path as well as a 200).
//      A 5xx fails the test with what it means. When the relay could not connect, the test pod tries
//      the GPU host itself: it is not under the relay's NetworkPolicy, so that tells a policy that
//      blocks the relay from a GPU host that is off or a server.py that is not listening.
//
// Settings come from the environment the chart sets. Importing this file runs nothing (the chart's
// tests import diagnose()); running it as the pod does reads HEALTHZ_URL and runs the checks.
import { lookup } from 'node:dns/promises'
import { connect } from 'node:net'

/** The relay's own words for a failed upstream request (src/forward/upstream-errors.ts), and their kinds. */
const RELAY_FAILURES = [
  ['could not be resolved', 'dns'],
  ['did not accept the connection in time', 'connect'],
  ['refused the connection', 'connect'],
  ['secure connection', 'tls'],
  ['did not respond in time', 'timeout'],
  ['sent an invalid response', 'protocol'],
  ['sent response headers over the size limit', 'protocol'],
  ['closed the connection unexpectedly', 'protocol']
]

/** What the relay said about the upstream in a 5xx body, as { kind, message }, or undefined. */
export function relayFailure (body) {
  let parsed
  try {
    parsed = JSON.parse(body)
  } catch {
    return undefined
  }
  if (parsed === null || typeof parsed.message !== 'string' || !['Bad Gateway', 'Gateway Timeout'].includes(parsed.error)) return undefined
  const match = RELAY_FAILURES.find(([words]) => parsed.message.includes(words))
  return { kind: match?.[1] ?? 'other', message: parsed.message }
}

/**
 * One sentence on why GET <path> through the relay answered a 5xx, and what to change.
 *   status, body   the relay's answer
 *   target         { url, host, port }: the relay's upstream
 *   path           the path requested
 *   probe          what the test pod saw connecting to target.host:port itself (see probeUpstream), or undefined
 *   egressCidrs    the CIDRs the chart's NetworkPolicy lets the relay reach, or undefined without it
 */
export function diagnose ({ status, body, target, path, probe, egressCidrs }) {
  const failure = relayFailure(body)
  const where = `${target.host}:${target.port}`
  if (failure === undefined) {
    return `the GPU server itself answered ${status} to GET ${path}: see server.py's log on the GPU host, or set helmTest.upstreamPath to a path it answers cheaply`
  }
  const said = `the relay answered ${status} ("${failure.message}")`
  if (failure.kind === 'tls') {
    return `${said}: TLS to ${target.url} failed. The GPU server's certificate must carry the name ${target.host} (the host of upstream.url) and be signed by a public CA or by the one in upstream.ca`
  }
  if (failure.kind === 'timeout') {
    return `${said}: the GPU server at ${where} accepted the connection but did not answer within relay.upstreamTimeoutSeconds; choose a cheaper helmTest.upstreamPath or check server.py`
  }
  if (failure.kind === 'protocol') {
    return `${said}: what listens at ${where} did not answer HTTP as the relay expects; check that upstream.url's scheme (${target.url.split(':')[0]}) is the one server.py speaks`
  }
  if (failure.kind === 'other' || probe === undefined) return `${said} for ${target.url}`
  if (probe.outcome === 'dns') {
    return `${said}: ${target.host} does not resolve, for the relay or for this test pod: check the DNS record of the GPU host (gpuExternalName.host, or the host of upstream.url)`
  }
  if (failure.kind === 'dns') {
    return `${said}: this test pod resolves ${target.host} (to ${probe.address}) but the relay cannot: its NetworkPolicy blocks DNS (see networkPolicy.allowDns and networkPolicy.dnsPeers)`
  }
  if (probe.outcome === 'open') {
    const policy = egressCidrs === undefined
      ? 'something blocks the relay pods only (another NetworkPolicy in the namespace?)'
      : `the relay's NetworkPolicy blocks it: networkPolicy.egressCidrs (${egressCidrs.length > 0 ? egressCidrs.join(', ') : 'empty'}) must include ${probe.address}, e.g. --set networkPolicy.egressCidrs={${probe.address}/32}`
    return `${said}: this test pod reaches the GPU host at ${probe.address}:${target.port} (${target.host}) directly, the relay does not, so ${policy}`
  }
  if (probe.outcome === 'refused') {
    return `${said}: the GPU host ${target.host} (${probe.address}) is up but nothing accepts connections on port ${target.port}: start server.py with --host 0.0.0.0 --port ${target.port}, or open that port in its firewall`
  }
  return `${said}: the GPU host ${target.host}${probe.address === undefined ? '' : ` (${probe.address})`} does not answer on port ${target.port}, neither to the relay nor to this test pod: it is off, asleep or unreachable from the cluster, or its firewall drops the port`
}

/** Connects to host:port from this pod: { outcome: 'open' | 'refused' | 'dns' | 'unreachable', address?, code? }. */
export async function probeUpstream (host, port, timeoutMs = 5000) {
  let address
  try {
    address = (await lookup(host)).address
  } catch (err) {
    return { outcome: 'dns', code: err.code }
  }
  return await new Promise((resolve) => {
    const socket = connect({ host: address, port, timeout: timeoutMs })
    const done = (result) => { socket.destroy(); resolve({ address, ...result }) }
    socket.once('connect', () => done({ outcome: 'open' }))
    socket.once('timeout', () => done({ outcome: 'unreachable', code: 'ETIMEDOUT' }))
    socket.once('error', (err) => done({ outcome: err.code === 'ECONNREFUSED' ? 'refused' : 'unreachable', code: err.code }))
  })
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

async function get (url, timeoutMs) {
  const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs), redirect: 'manual' })
  return { status: res.status, body: await res.text() }
}

async function main (env) {
  const attempts = Number(env.ATTEMPTS ?? 5)
  const retryMs = Number(env.RETRY_SECONDS ?? 3) * 1000
  const error = (err) => err.cause?.message ?? err.message

  let ready = false
  for (let attempt = 1; attempt <= attempts && !ready; attempt++) {
    try {
      const { status, body } = await get(env.HEALTHZ_URL, 5000)
      console.log(`GET ${env.HEALTHZ_URL} -> ${status} ${body}`)
      ready = status === 200
    } catch (err) {
      console.log(`GET ${env.HEALTHZ_URL} failed (attempt ${attempt}/${attempts}): ${error(err)}`)
    }
    if (!ready && attempt < attempts) await sleep(retryMs)
  }
  if (!ready) {
    console.log(`FAIL: the relay did not answer ${env.HEALTHZ_URL} with 200 (503 "degraded": the GPU host's name does not resolve; no answer: the relay pods are not ready, see kubectl describe pod)`)
    return 1
  }
  if (!env.CHECK_URL) {
    console.log('OK: the relay is ready. Set helmTest.upstreamPath to also check the way to the GPU server.')
    return 0
  }

  const target = { url: env.RELAY_UPSTREAM, host: env.UPSTREAM_HOST, port: Number(env.UPSTREAM_PORT) }
  const path = new URL(env.CHECK_URL).pathname
  let last
  for (let attempt = 1; attempt <= attempts; attempt++) {
    try {
      last = await get(env.CHECK_URL, 30_000)
      if (last.status < 500) {
        console.log(`OK: GET ${env.CHECK_URL} -> ${last.status}: the GPU server at ${target.url} answered through the relay.`)
        return 0
      }
      console.log(`GET ${env.CHECK_URL} -> ${last.status} ${last.body.slice(0, 300)} (attempt ${attempt}/${attempts})`)
    } catch (err) {
      last = undefined
      console.log(`GET ${env.CHECK_URL} failed (attempt ${attempt}/${attempts}): ${error(err)}`)
    }
    if (attempt < attempts) await sleep(retryMs)
  }
  if (last === undefined) {
    console.log(`FAIL: the relay did not answer GET ${env.CHECK_URL} within 30 s`)
    return 1
  }
  const kind = relayFailure(last.body)?.kind
  const probe = kind === 'connect' || kind === 'dns' ? await probeUpstream(target.host, target.port) : undefined
  const egressCidrs = env.EGRESS_CIDRS === undefined ? undefined : env.EGRESS_CIDRS.split(',').filter(Boolean)
  console.log(`FAIL: ${diagnose({ status: last.status, body: last.body, target, path, probe, egressCidrs })}`)
  return 1
}

if (process.env.HEALTHZ_URL !== undefined) process.exit(await main(process.env))
