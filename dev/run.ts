// `npm run dev`: the relay (restarted on every change under src/) in front of the demo upstream, so a
// fresh clone with no GPU server anywhere can curl a streamed response through the relay at once.
import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { startDemoUpstream } from './demo-upstream.js'

const upstreamPort = Number(process.env.DEMO_UPSTREAM_PORT ?? 5011)
const { server, port } = await startDemoUpstream(upstreamPort)
const relayPort = process.env.RELAY_PORT ?? '5010'

const env = {
  UPSTREAM_URL: `http://127.0.0.1:${port}`,
  RELAY_PORT: relayPort,
  RELAY_HOST: '127.0.0.1',
  RELAY_WORKERS: '1',
  // Every restart drains; no load balancer needs the 5 s head start here.
  RELAY_SHUTDOWN_DELAY_SECONDS: '0',
  ...process.env
}

const relay = spawn(process.execPath, ['--import', 'tsx', '--watch', fileURLToPath(new URL('../src/server.ts', import.meta.url))], {
  env,
  stdio: 'inherit'
})

const base = `http://127.0.0.1:${relayPort}`
console.error(`
demo upstream on http://127.0.0.1:${port}, relay on ${base}; try:
  curl -N ${base}/stream?tokens=5
  curl -N ${base}/v1/chat/completions -H 'content-type: application/json' -d '{"stream":true}'
  curl ${base}/healthz
  curl ${base}/metrics
`)

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    relay.kill(signal)
  })
}
relay.on('exit', (code) => {
  server.close()
  process.exitCode = code ?? 0
})
