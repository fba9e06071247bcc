// /metrics must be what Prometheus parses: checked with Prometheus' own promtool, for one process and
// for the summed output of a cluster. The relay's own metrics must raise no lint finding.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { spawnRelay } from '../helpers/relay.js'
import { startUpstream } from '../helpers/upstreams.js'

const promtool = spawnSync('promtool', ['--version'], { encoding: 'utf8' })
const available = promtool.status === 0
// CI installs promtool and sets this, so a missing promtool fails there instead of skipping.
const required = process.env.RELAY_TEST_REQUIRE_TOOLS === '1'

function check (exposition: string): { status: number | null, output: string } {
  const result = spawnSync('promtool', ['check', 'metrics'], { input: exposition, encoding: 'utf8' })
  return { status: result.status, output: `${result.stdout}${result.stderr}` }
}

for (const workers of ['1', '2']) {
  test(`promtool parses /metrics with RELAY_WORKERS=${workers}; relay_* metrics lint clean`, { skip: !available && !required ? 'promtool is not installed (apt-get install prometheus)' : false }, async (t) => {
    assert.ok(available, 'promtool is required (RELAY_TEST_REQUIRE_TOOLS=1) but not installed: apt-get install prometheus')
    const upstream = await startUpstream()
    t.after(() => upstream.close())
    const relay = await spawnRelay({ UPSTREAM_URL: upstream.url, RELAY_WORKERS: workers }, { ready: Number(workers) })
    t.after(() => relay.stop())
    for (const path of ['/v1/models', '/missing', '/v1/jobs/123', '/livez']) await (await fetch(relay.url + path)).arrayBuffer()
    const exposition = await (await fetch(`${relay.url}/metrics`)).text()
    // Both 404s from the upstream count as "unmatched", whatever their paths.
    assert.match(exposition, /^relay_http_requests_total\{method="GET",endpoint="unmatched",status="404"\} 2$/m)
    assert.doesNotMatch(exposition, /endpoint="\/missing"|endpoint="\/v1\/jobs/)

    const { status, output } = check(exposition)
    // 0: clean; 3: lint findings. Anything else (1) is a parse error.
    assert.ok(status === 0 || status === 3, `promtool exited ${status}: ${output}`)
    assert.doesNotMatch(output, /error while linting|parsing error/)
    const findings = output.split('\n').filter((line) => line.trim() !== '')
    for (const finding of findings) assert.doesNotMatch(finding, /^relay_/, `lint finding on a relay metric: ${finding}`)
  })
}
