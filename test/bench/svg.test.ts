// The latency plot: valid SVG, one series per system, names escaped, empty data handled.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { escapeXml, latencySvg, logTicks } from '../../bench/lib/svg.js'

const SERIES = [
  { label: 'nginx proxy_pass', points: [{ connections: 1, p50Ms: 0.1, p99Ms: 0.2 }, { connections: 10, p50Ms: 0.3, p99Ms: 0.6 }, { connections: 50, p50Ms: 1.5, p99Ms: 2.5 }] },
  { label: 'relay <R&D>', points: [{ connections: 50, p50Ms: 9, p99Ms: 40 }, { connections: 1, p50Ms: 0.2, p99Ms: 0.5 }, { connections: 10, p50Ms: 2, p99Ms: 9 }] }
]

test('an SVG document with one group of two lines per system, plus a legend', () => {
  const svg = latencySvg(SERIES, { title: 'Latency', subtitle: 'a "test"' })
  assert.match(svg, /^<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg"/)
  assert.match(svg, /<\/svg>\n$/)
  assert.equal((svg.match(/<g class="series"/g) ?? []).length, 2)
  assert.equal((svg.match(/<polyline /g) ?? []).length, 4)
  assert.equal((svg.match(/stroke-dasharray/g) ?? []).length, 3, 'p50 dashed for both systems, and in the key')
  assert.ok(svg.includes('relay &lt;R&amp;D&gt;'))
  assert.ok(!svg.includes('<R&D>'))
  assert.ok(svg.includes('a &quot;test&quot;'))
})

test('points are placed left to right by connections, higher latency higher up', () => {
  const svg = latencySvg([SERIES[1] as typeof SERIES[number]], { title: 't' })
  const p99 = /<polyline[^>]*stroke-width="2.2" points="([^"]+)"/.exec(svg)?.[1]
  assert.ok(p99 !== undefined)
  const pts = p99.split(' ').map((p) => p.split(',').map(Number) as [number, number])
  assert.equal(pts.length, 3)
  assert.ok((pts[0] as [number, number])[0] < (pts[1] as [number, number])[0] && (pts[1] as [number, number])[0] < (pts[2] as [number, number])[0], 'sorted by connections')
  assert.ok((pts[0] as [number, number])[1] > (pts[2] as [number, number])[1], '0.5 ms sits below 40 ms')
  for (const [x, y] of pts) assert.ok(Number.isFinite(x) && Number.isFinite(y))
})

test('the emphasised series is drawn thicker, its legend in bold', () => {
  const svg = latencySvg([{ ...(SERIES[1] as typeof SERIES[number]), emphasis: true }], { title: 't' })
  assert.match(svg, /stroke-width="3.3\d*" points=/)
  assert.match(svg, /font-weight="bold">relay &lt;R&amp;D&gt;/)
})

test('no data, a single connection count, or zero latencies do not break the plot', () => {
  assert.match(latencySvg([], { title: 't' }), /no latency data/)
  const single = latencySvg([{ label: 'a', points: [{ connections: 10, p50Ms: 1, p99Ms: 2 }] }], { title: 't' })
  assert.doesNotMatch(single, /NaN|Infinity/)
  const zeros = latencySvg([{ label: 'a', points: [{ connections: 10, p50Ms: 0, p99Ms: 0 }] }], { title: 't' })
  assert.match(zeros, /no latency data/)
})

test('log ticks at 1, 2 and 5 of each decade', () => {
  assert.deepEqual(logTicks(0.1, 10), [0.1, 0.2, 0.5, 1, 2, 5, 10])
  assert.deepEqual(logTicks(1, 1), [1])
  assert.deepEqual(logTicks(0, 10), [])
})

test('escapeXml', () => {
  assert.equal(escapeXml('<a href="x">\'&\'</a>'), '&lt;a href=&quot;x&quot;&gt;&apos;&amp;&apos;&lt;/a&gt;')
})

test('the axis titles can be named (the streaming plot\'s)', () => {
  const svg = latencySvg(SERIES, { title: 't', xLabel: 'concurrent SSE streams', yLabel: 'added delay & more' })
  assert.ok(svg.includes('>concurrent SSE streams</text>'))
  assert.ok(svg.includes('>added delay &amp; more</text>'))
  assert.ok(latencySvg(SERIES, { title: 't' }).includes('concurrent connections (wrk, closed loop)'))
})
