// RESULTS.md and the summary printed at the end of a run. Pure: results in, text out.
import { LATE_GROWTH_LIMIT_BYTES, MB, lateGrowth, lostEvents, rssPerStream, size, type Results, type StreamRow, type Summary, type Target } from './results.js'
import { median } from './stats.js'

const fmt = (v: number | undefined, digits = 2): string => v === undefined || !Number.isFinite(v) ? '—' : v.toFixed(digits)
const int = (v: number | undefined): string => v === undefined || !Number.isFinite(v) ? '—' : Math.round(v).toLocaleString('en-US')
const mbs = (v: number | undefined): string => v === undefined || !Number.isFinite(v) ? '—' : (v / MB).toFixed(1)
const signed = (v: number | undefined, digits = 2): string => v === undefined || !Number.isFinite(v) ? '—' : `${v >= 0 ? '+' : ''}${v.toFixed(digits)}`

/** The slowest speed probe over the fastest: more than this, and the CPU did not run at one speed. */
export const PROBE_SPREAD_LIMIT = 1.25

export function probeSpread (results: Results): number | undefined {
  const ms = (results.meta.load.speedProbes ?? []).map((p) => p.ms).filter((v) => v > 0)
  return ms.length < 2 ? undefined : Math.max(...ms) / Math.min(...ms)
}

export const STATUS_MARK: Record<Target['status'], string> = { met: '✅ met', 'not met': '❌ not met', 'not measured': '⚪ not measured' }

export function isNoisy (results: Results, summary: Summary): { noisy: boolean, why: string[] } {
  const why: string[] = []
  const { load, maxLoad } = results.meta
  if (load.before >= maxLoad) why.push(`the 1-minute load average was ${load.before.toFixed(2)} when the run started (≥ ${maxLoad})`)
  // Other engineers' CPU use while wrk ran: more than a fifth of a core skews the pinned cores.
  if (summary.foreignCores.median > 0.2) why.push(`other processes used a median ${summary.foreignCores.median.toFixed(2)} cores while measuring`)
  const spread = probeSpread(results)
  if (spread !== undefined && spread > PROBE_SPREAD_LIMIT) {
    why.push(`the same fixed work took up to ${((spread - 1) * 100).toFixed(0)} % longer at one point of the run than at another on the proxy's CPU (a busy host: this VM may not report steal time)`)
  }
  return { noisy: why.length > 0, why }
}

function summaryTable (summary: Summary, connections: number[]): string[] {
  const c = summary.loadConnections
  const lat = connections.map((n) => `p50 / p99 @${n}, ms`)
  const head = ['system', `req/s @${c}`, '× nginx', `CPU µs/req @${c}`, 'CPU × nginx\'s', ...lat, 'RSS idle / load, MB', 'SSE 1st event', 'SSE event delay p50 / p99, ms', 'RSS Δ upload, MB', 'RSS Δ download, MB', 'KB / idle conn']
  const rows = summary.systems.map((s) => [
    s.label,
    int(s.rps[c]),
    fmt(s.ratioToNginx[c], 3),
    fmt(s.cpuUsPerRequest[c], 1),
    fmt(s.cpuRatioToNginx[c], 2),
    ...connections.map((n) => `${fmt(s.p50Ms[n])} / ${fmt(s.p99Ms[n])}`),
    `${mbs(s.idleRssBytes)} / ${mbs(s.loadRssBytes)}`,
    s.sse === undefined ? '—' : `${fmt(s.sse.firstEventMs)} ms`,
    s.sse === undefined ? '—' : `${fmt(s.sse.eventDelayMs)} / ${fmt(s.sse.eventDelayP99Ms)}`,
    mbs(s.upload?.peakGrowthBytes),
    mbs(s.download?.peakGrowthBytes),
    s.idleConnectionBytes === undefined ? '—' : fmt(s.idleConnectionBytes / 1024, 1)
  ])
  if (summary.direct !== undefined) {
    rows.push(['(no proxy: client → upstream)', '', '', '', '', ...connections.map(() => ''), '', `${fmt(summary.direct.firstEventMs)} ms`,
      `${fmt(summary.direct.eventDelayMs)} / ${fmt(summary.direct.eventDelayP99Ms)}`, '', '', ''])
  }
  return markdownTable(head, rows)
}

export function markdownTable (head: string[], rows: string[][]): string[] {
  const esc = (cell: string): string => cell.replace(/\|/g, '\\|')
  return [`| ${head.map(esc).join(' | ')} |`, `|${head.map(() => '---').join('|')}|`, ...rows.map((r) => `| ${r.map(esc).join(' | ')} |`)]
}

/** The streaming scenario's tables (one per stream count), its plot and issue 14's targets. */
function streamSection (results: Results, rows: readonly StreamRow[], targets: Target[]): string[] {
  const o = results.meta.options
  const rate = o.streamRate as number
  const L: string[] = ['## Streaming: concurrent token streams (issue 14)', '']
  L.push(`Each run opens N concurrent Server-Sent Events streams through the system, each on a connection of its own, and the upstream (\`bench/servers/upstream.ts\`) writes one ~60-byte JSON event (a token) to each ${rate} times a second, the streams staggered over the interval; once every stream is open each goes on for ${o.streamEvents as number} more events (the measured window) and ends. The system is pinned to its core, the upstream and the client (the harness) to the other. **CPU µs/event**: the system's CPU time in the window (every thread of its processes, /proc/<pid>/task/*/schedstat) ÷ the events relayed in it; "× nginx" and "× Caddy" are medians of the per-round ratios. **Added delay**: receipt − the upstream's send stamp, both read from CLOCK_MONOTONIC (process.hrtime, one clock for every process on the machine), over the window's events. **Lost**: events the upstream sent and the client never got, reordered ones and streams cut short, over the whole run (must be 0). **RSS / stream**: (RSS with every stream open, the median of samples every 250 ms − RSS before the round's first stream) ÷ N; every system starts afresh each round and the counts rise within it. Medians over ${o.rounds as number} round(s), the systems alternating.`, '')
  for (const n of [...new Set(rows.map((r) => r.streams))]) {
    L.push(`### ${n} streams (${int(n * rate)} events/s)`, '')
    L.push(...markdownTable(['system', 'CPU µs/event', '× nginx', '× Caddy', 'added delay p50 / p99, ms', 'events lost', 'RSS / stream, KB', 'RSS idle / open, MB'],
      rows.filter((r) => r.streams === n).map((r) => [
        r.system === 'relay' ? `**${r.label}**` : r.label, fmt(r.cpuUsPerEvent, 1), fmt(r.cpuRatioToNginx), fmt(r.cpuRatioToCaddy),
        `${fmt(r.p50Ms)} / ${fmt(r.p99Ms)}`, `${r.lost}${r.outOfOrder + r.cut > 0 ? ` (${r.outOfOrder} reordered, ${r.cut} cut)` : ''}`,
        fmt(r.rssPerStreamBytes / 1024, 1), r.system === 'direct' ? '' : `${mbs(r.idleRssBytes)} / ${mbs(r.openRssBytes)}`])), '')
  }
  const generator = Math.max(...results.streams.map((r) => r.generatorCores))
  L.push(`The load generator's core (upstream + client) was at most ${fmt(generator)} cores busy in a window${generator > 0.9 ? ' — nearly saturated: part of the added delay at that count is the generator\'s own (compare the no-proxy row)' : ''}.`, '')
  L.push('![p50 and p99 added delay against concurrent streams, per system](streams.svg)', '')
  L.push('## Targets (issue 14)', '')
  L.push('For the relay in its production configuration (one process, INFO request logging, metrics on, overload limits on but not binding), judged automatically from this run.', '')
  L.push(...markdownTable(['target', 'goal', 'measured', 'status'], targets.map((t) => [t.name, t.target, t.measured, STATUS_MARK[t.status]])), '')
  return L
}

export function renderMarkdown (results: Results, summary: Summary, targets: Target[], streams: { rows: StreamRow[], targets: Target[] } = { rows: [], targets: [] }): string {
  const { meta } = results
  const connections = [...new Set(results.throughput.map((r) => r.connections))].sort((a, b) => a - b)
  const noise = isNoisy(results, summary)
  const L: string[] = []
  L.push('# Benchmark results', '')
  L.push(`Written by \`npm run bench\` on ${meta.date} in ${Math.round(meta.elapsedSeconds)} s. Rerun it rather than editing this file; \`bench/README.md\` says how to read it.`, '')
  if (noise.noisy) {
    L.push(`> **⚠ Noisy run — draw no conclusions from it.** ${noise.why.join('; ')}. Rerun on a quiet machine (\`npm run bench -- --wait-quiet\`).`, '')
  } else {
    L.push(`> Quiet run: 1-minute load ${meta.load.before.toFixed(2)} at the start (< ${meta.maxLoad}), other processes used a median ${fmt(summary.foreignCores.median)} cores (max ${fmt(summary.foreignCores.max)}) while measuring.`, '')
  }

  L.push('## Machine and versions', '')
  L.push(`- **Machine:** ${meta.machine.cpuModel}, ${meta.machine.cores} cores${meta.machine.virtualised ? ' (virtual machine)' : ''}, ${(meta.machine.memoryBytes / 2 ** 30).toFixed(1)} GiB, Linux ${meta.machine.kernel}`)
  L.push(`- **Versions:** ${Object.entries(meta.versions).map(([k, v]) => `${k} ${v}`).join(', ')}`)
  L.push(`- **Pinning:** ${meta.pinning.note}`)
  L.push(`- **Load average (1 min):** ${meta.load.samples.map((s) => `${s.when} ${s.one.toFixed(2)}`).join(', ')} (the benchmark's own processes count in it after the start)`)
  if ((meta.load.speedProbes ?? []).length > 0) {
    L.push(`- **Speed of the proxy's CPU** (a fixed loop, best of 5, ms; should not move): ${(meta.load.speedProbes ?? []).map((p) => `${p.when} ${p.ms.toFixed(1)}`).join(', ')}`)
  }
  L.push(`- **CPU of other processes while measuring:** median ${fmt(summary.foreignCores.median)} cores, max ${fmt(summary.foreignCores.max)}${results.throughput.length === 0 ? '' : `; the load generator's core (wrk + upstreams) was at most ${fmt(summary.generatorCoresMax)} cores busy while wrk ran${summary.generatorCoresMax > 0.95 ? ' — saturated: the fastest systems may be held back by the load generator, which flatters the others\' ratios' : ''}`}.`)
  const o = meta.options
  const conns = o.connections as number[]
  const run = [
    results.throughput.length > 0 ? `${o.rounds as number} alternating rounds × ${conns.map((c) => `${c} connections (${c === Math.max(...conns) ? o.durationSeconds as number : o.latencyDurationSeconds as number} s per wrk run)`).join(', ')}` : '',
    results.sse.length > 0 ? `${o.sseStreamsPerRound as number} SSE streams per system per round (${o.sseEvents as number} events, ${o.sseIntervalMs as number} ms apart)` : '',
    results.transfers.length > 0 ? `${size(o.transferBytes as number)} up and down` : '',
    results.idle.length > 0 ? `${o.idleConnections as number} idle connections` : '',
    results.streams.length > 0 ? `${o.rounds as number} rounds × ${(o.streamCounts as number[]).join(', ')} concurrent token streams (${o.streamRate as number} events/s each, ${o.streamEvents as number} events while all are open)` : ''
  ]
  L.push(`- **Run:** ${run.filter((r) => r !== '').join('; ')}.`)
  L.push('')

  if (results.systems.length > 0) L.push(...smallRequests(results, summary, targets, connections, noise.noisy))
  if (streams.rows.length > 0) L.push(...streamSection(results, streams.rows, streams.targets))
  if (noise.noisy && streams.rows.length > 0) L.push('_This run was noisy: a target marked here is not evidence either way._', '')

  L.push('## Details', '')
  if (results.throughput.length > 0) {
    L.push('### wrk runs', '')
    L.push('Every run, in the order they ran. Ratio: to nginx in the same round and connection count. "other" = cores used by processes this benchmark did not start.', '')
    const nginxRps = new Map(results.throughput.filter((r) => r.system === 'nginx').map((r) => [`${r.round}/${r.connections}`, r.requestsPerSecond]))
    L.push(...markdownTable(['round', 'conns', 'system', 'req/s', '× nginx', 'CPU µs/req', 'p50 ms', 'p90 ms', 'p99 ms', 'max ms', 'RSS max MB', 'generator cores', 'other cores'],
      results.throughput.map((r) => {
        const ref = nginxRps.get(`${r.round}/${r.connections}`)
        return [String(r.round), String(r.connections), r.system, int(r.requestsPerSecond), ref === undefined ? '—' : fmt(r.requestsPerSecond / ref, 3),
          fmt(r.cpuUsPerRequest, 1), fmt(r.latencyMs.p50), fmt(r.latencyMs.p90), fmt(r.latencyMs.p99), fmt(r.latencyMs.max), mbs(r.rssMaxBytes), fmt(r.generatorCores), fmt(r.foreignCores)]
      })), '')
  }
  if (results.streams.length > 0) {
    L.push('### Streaming runs', '')
    L.push('Every run, in the order they ran. "opened in": from the first connection to every stream open; "window": the events relayed while every stream was open, and how long that lasted.', '')
    L.push(...markdownTable(['round', 'streams', 'system', 'opened in, s', 'window events / s', 'CPU µs/event', 'added delay p50 / p99 / max, ms', 'sent', 'lost', 'reordered', 'cut', 'RSS idle / open, MB', 'KB / stream', 'generator cores', 'other cores'],
      results.streams.map((r) => [String(r.round), String(r.streams), r.system, fmt(r.openSeconds, 1), `${int(r.windowEvents)} / ${fmt(r.windowSeconds, 1)}`, fmt(r.cpuUsPerEvent, 1),
        `${fmt(r.delayMs.p50)} / ${fmt(r.delayMs.p99)} / ${fmt(r.delayMs.max)}`, int(r.sent), int(lostEvents(r)), String(r.outOfOrder), String(r.cut),
        r.idleRssBytes === undefined ? '' : `${mbs(r.idleRssBytes)} / ${mbs(r.openRssBytes)}`, fmt((rssPerStream(r) ?? NaN) / 1024, 1), fmt(r.generatorCores), fmt(r.foreignCores)])), '')
  }
  return [...L, ...details(results, summary)].join('\n')
}

function smallRequests (results: Results, summary: Summary, targets: Target[], connections: number[], noisy: boolean): string[] {
  const { meta } = results
  const L: string[] = []
  L.push('## Summary', '')
  L.push(`Medians over rounds. Throughput and CPU at ${summary.loadConnections} connections, with each proxy pinned to its own core: the proxy is the bottleneck, so requests/s is the inverse of its CPU per request. "× nginx" and "CPU × nginx's" are medians of the per-round ratios (the steadiest figures when the machine's speed drifts). RSS is VmRSS summed over the system's processes. RSS Δ is the peak growth while streaming ${size((meta.options.transferBytes as number))} through it. SSE times are medians over streams (first event: request sent → first event received on a fresh connection) and over events (delay: upstream write → client receipt).`, '')
  L.push(...summaryTable(summary, connections), '')

  L.push('## Targets (issue 6)', '')
  L.push('For the relay in its production configuration (one process, INFO request logging, metrics on), judged automatically from this run.', '')
  L.push(...markdownTable(['target', 'goal', 'measured', 'status'], targets.map((t) => [t.name, t.target, t.measured, STATUS_MARK[t.status]])), '')
  if (noisy) L.push('_This run was noisy: a target marked here is not evidence either way._', '')

  L.push('## Latency against load', '')
  L.push('![p50 and p99 latency against connections, per system](latency.svg)', '')
  L.push('wrk is a closed-loop generator: each connection sends its next request when the previous answer arrives, so past saturation latency grows with connections / throughput (and coordinated omission hides queueing a fixed-rate client would see).', '')
  return L
}

/** The SSE, transfer, idle-connection and workers details, how it was measured, commands and configs. */
function details (results: Results, summary: Summary): string[] {
  const { meta } = results
  const L: string[] = []
  if (results.sse.length > 0) L.push('### SSE', '')
  const sseSystems = [...new Set(results.sse.map((r) => r.system))]
  if (results.sse.length > 0) {
    L.push(...markdownTable(['system', 'streams', 'first event p50 / max, ms', 'over nginx (median per round), ms', 'event delay p50 / p99 / max, ms', 'over nginx, ms'],
      sseSystems.map((id) => {
        const runs = results.sse.filter((r) => r.system === id)
        const delays = runs.flatMap((r) => r.eventDelaysMs).sort((a, b) => a - b)
        const s = summary.systems.find((x) => x.id === id)
        return [id, String(runs.length), `${fmt(median(runs.map((r) => r.firstEventMs)))} / ${fmt(Math.max(...runs.map((r) => r.firstEventMs)))}`,
          signed(s?.sse?.firstEventOverNginxMs), `${fmt(median(delays))} / ${fmt(delays[Math.max(0, Math.ceil(delays.length * 0.99) - 1)])} / ${fmt(delays.at(-1))}`,
          signed(s?.sse?.eventDelayOverNginxMs)]
      })), '')
  }

  if (results.transfers.length > 0) {
    L.push('### Large bodies', '')
    L.push(`RSS growth = peak during the transfer − RSS just before it (peak from VmHWM after resetting it through /proc/<pid>/clear_refs, and from VmRSS sampled every 25 ms; the higher of the two). "Not growing with size": the highest RSS sampled in the second half of the bytes is at most ${(LATE_GROWTH_LIMIT_BYTES / MB).toFixed(0)} MB above the first half's.`, '')
    L.push(...markdownTable(['system', 'direction', 'size', 'MB/s', 'RSS before, MB', 'peak Δ, MB', 'peak RSS per quarter of the bytes, MB', '2nd half − 1st, MB', 'peak from'],
      results.transfers.map((t) => [t.system, t.direction, size(t.bytes), int(t.bytes / MB / t.seconds), mbs(t.baselineRssBytes), mbs(t.peakGrowthBytes),
        t.quarterMaxRssBytes.map((b) => mbs(b)).join(' / '), signed(lateGrowth(t) / MB, 1), t.peakMethod])), '')
  }

  if (results.idle.length > 0) {
    L.push('### Idle keep-alive connections', '')
    L.push('Each connection sent one GET and stayed open; RSS read after a second of quiet.', '')
    L.push(...markdownTable(['system', 'connections', 'RSS before, MB', 'RSS after, MB', 'per connection, KB'],
      results.idle.map((i) => [i.system, String(i.connections), mbs(i.rssBeforeBytes), mbs(i.rssAfterBytes), fmt((i.rssAfterBytes - i.rssBeforeBytes) / i.connections / 1024, 1)])), '')
  }

  L.push('### Workers', '')
  if (results.workers.length > 0) {
    L.push(...markdownTable(['round', 'workers', 'connections', 'req/s', 'CPUs'], results.workers.map((w) => [String(w.round), String(w.workers), String(w.connections), int(w.requestsPerSecond), w.cpus])), '')
  } else {
    L.push(`Not measured: ${results.workersSkipped ?? 'not selected'}.`, '')
  }

  L.push('## How it was measured', '')
  L.push(...[
    'Phase 1 (wrk, idle RSS, idle connections): every proxy forwards to nginx answering `GET /json` with `return 200` and a 42-byte JSON; phase 2 (SSE, large bodies): every proxy forwards to a small node:http server (`bench/servers/upstream.ts`). The proxies are restarted between phases; nginx gets `proxy_buffering off` and `proxy_request_buffering off` in phase 2.',
    'wrk runs one thread per run; a round runs every system once per connection count, the order rotating from round to round, so a disturbance hits all systems alike and ratios are taken within a round.',
    'CPU per request: utime + stime from /proc/<pid>/stat of all the system\'s processes (nginx master and worker, the relay\'s process), before and after the run, divided by the requests wrk counted.',
    'A run with any socket error, timeout or answer of 400 or more (wrk), an SSE stream that lost an event, a transfer that lost a byte, a streaming run whose streams were not all open within 30 s + 20 ms per stream, or an error line in the relay\'s log is refused: nothing is written. Events lost by a streaming run are reported, not refused.',
    ...meta.notes
  ].map((n) => `- ${n}`), '')

  L.push('## Commands', '')
  L.push('```sh', ...meta.commands, '```', '')
  L.push('## Configuration files', '')
  for (const c of meta.configs) {
    L.push('<details>', `<summary>${c.name}</summary>`, '', '```nginx', c.text.trimEnd(), '```', '', '</details>', '')
  }
  return L
}

/** The compact tables printed at the end of a run. */
export function renderStdout (results: Results, summary: Summary, targets: Target[], streams: { rows: StreamRow[], targets: Target[] } = { rows: [], targets: [] }): string {
  const c = summary.loadConnections
  const table = (head: string[], rows: string[][]): string[] => {
    const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)))
    const line = (cells: string[]): string => cells.map((cell, i) => i === 0 ? cell.padEnd(widths[i] as number) : cell.padStart(widths[i] as number)).join('  ')
    return [line(head), ...rows.map(line), '']
  }
  const out = summary.systems.length === 0
    ? []
    : table(['system', `req/s@${c}`, '×nginx', 'µs/req', 'p99@1', 'p99@10', `p99@${c}`, 'RSS MB', 'SSE 1st', 'ev.delay', 'up ΔMB', 'down ΔMB', 'KB/conn'], summary.systems.map((s) => [
      s.id, int(s.rps[c]), fmt(s.ratioToNginx[c], 3), fmt(s.cpuUsPerRequest[c], 1), fmt(s.p99Ms[1]), fmt(s.p99Ms[10]), fmt(s.p99Ms[c]),
      mbs(s.idleRssBytes), fmt(s.sse?.firstEventMs), fmt(s.sse?.eventDelayMs), mbs(s.upload?.peakGrowthBytes), mbs(s.download?.peakGrowthBytes),
      s.idleConnectionBytes === undefined ? '—' : fmt(s.idleConnectionBytes / 1024, 1)
    ]))
  if (streams.rows.length > 0) {
    out.push(...table(['streams', 'system', 'µs/event', '×nginx', '×Caddy', 'p50 ms', 'p99 ms', 'lost', 'KB/stream'], streams.rows.map((r) => [
      String(r.streams), r.system, fmt(r.cpuUsPerEvent, 1), fmt(r.cpuRatioToNginx), fmt(r.cpuRatioToCaddy), fmt(r.p50Ms), fmt(r.p99Ms), String(r.lost + r.outOfOrder + r.cut), fmt(r.rssPerStreamBytes / 1024, 1)])))
  }
  for (const t of [...(summary.systems.length === 0 ? [] : targets), ...streams.targets]) out.push(`${t.status === 'met' ? 'MET    ' : t.status === 'not met' ? 'NOT MET' : 'n/a    '}  ${t.name} ${t.target}: ${t.measured}`)
  const noise = isNoisy(results, summary)
  out.push('', noise.noisy ? `NOISY RUN: ${noise.why.join('; ')}` : `quiet run (load ${results.meta.load.before.toFixed(2)} at start)`)
  return out.join('\n')
}
