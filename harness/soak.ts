// A steady mixed load (small GETs, POSTs and SSE streams) against the built relay, with its memory
// read before and after: `npm run soak` runs it for a minute, the test suite for 15 seconds.
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { setTimeout as sleep } from 'node:timers/promises'
import { startDemoUpstream } from '../dev/demo-upstream.js'
import { spawnRelay } from './relay-process.js'
import { describeFailures, runLoad, type LoadResult } from './load.js'
import { rssBytes } from './proc.js'

/**
 * Growth allowed in what survives a full GC (V8 heap + external memory) between warm-up and the end:
 * caches and pools settling. A leak of 1 KB per request crosses it within the test's 10 000 requests.
 */
export const RETAINED_MARGIN_BYTES = 8 * 1024 * 1024

const HEAP_PROBE = fileURLToPath(new URL('./heap-probe.mjs', import.meta.url))

export interface SoakOptions {
  seconds: number
  warmupSeconds: number
  concurrency: number
}

export interface SoakResult {
  load: LoadResult
  rssAfterWarmup: number
  rssAfterRun: number
  /** V8 heap used + external memory after a full GC */
  retainedAfterWarmup: number
  retainedAfterRun: number
  /** Unexpected outcomes: failures, non-2xx, truncated bodies */
  errors: string
}

/** Asks the relay (running heap-probe.mjs) to collect garbage and report what is left. */
async function retainedBytes (pid: number, file: string): Promise<number> {
  const before = statSync(file, { throwIfNoEntry: false })?.mtimeMs ?? 0
  process.kill(pid, 'SIGWINCH')
  const deadline = Date.now() + 5000
  for (;;) {
    const written = statSync(file, { throwIfNoEntry: false })
    if (written !== undefined && written.mtimeMs !== before && written.size > 0) {
      try {
        const usage = JSON.parse(readFileSync(file, 'utf8')) as NodeJS.MemoryUsage
        return usage.heapUsed + usage.external
      } catch {} // caught mid-write: read it again
    }
    if (Date.now() > deadline) throw new Error('the relay did not answer the heap probe within 5 s')
    await sleep(20)
  }
}

export async function runSoak (options: SoakOptions): Promise<SoakResult> {
  const probeDir = mkdtempSync(join(tmpdir(), 'relay-soak-'))
  const probeFile = join(probeDir, 'memory.json')
  const upstream = await startDemoUpstream(0, '127.0.0.1')
  const relay = await spawnRelay({ UPSTREAM_URL: `http://127.0.0.1:${upstream.port}`, RELAY_WORKERS: '1', HEAP_PROBE_FILE: probeFile },
    { nodeOptions: ['--expose-gc', '--import', HEAP_PROBE] })
  try {
    const pid = relay.child.pid as number
    const mix = { get: 4, post: 3, sse: 1 }
    const sse = { tokens: 10, intervalMs: 20 }
    const warmup = await runLoad({ url: relay.url, concurrency: options.concurrency, durationMs: options.warmupSeconds * 1000, mix, sse })
    await sleep(500)
    const rssAfterWarmup = rssBytes([pid])
    const retainedAfterWarmup = await retainedBytes(pid, probeFile)
    const load = await runLoad({ url: relay.url, concurrency: options.concurrency, durationMs: options.seconds * 1000, mix, sse })
    await sleep(500)
    const rssAfterRun = rssBytes([pid])
    const retainedAfterRun = await retainedBytes(pid, probeFile)
    const failures = [...warmup.failures, ...load.failures]
    return {
      load,
      rssAfterWarmup,
      rssAfterRun,
      retainedAfterWarmup,
      retainedAfterRun,
      errors: failures.length === 0 ? '' : describeFailures(failures)
    }
  } finally {
    await relay.stop()
    upstream.server.closeAllConnections()
    await new Promise((resolve) => upstream.server.close(resolve))
    rmSync(probeDir, { recursive: true, force: true })
  }
}

export function formatSoak (result: SoakResult): string {
  const MB = 1024 * 1024
  const { load } = result
  return [
    `requests: ${load.outcomes.length} in ${(load.elapsedMs / 1000).toFixed(1)} s = ${load.requestsPerSecond.toFixed(0)} req/s`,
    `latency: p50 ${load.p50.toFixed(1)} ms, p99 ${load.p99.toFixed(1)} ms (SSE streams included)`,
    `retained after a full GC (heap + external): ${(result.retainedAfterWarmup / MB).toFixed(1)} MB after warm-up, ${(result.retainedAfterRun / MB).toFixed(1)} MB after the run (${signedMB(result.retainedAfterRun - result.retainedAfterWarmup)})`,
    `RSS: ${(result.rssAfterWarmup / MB).toFixed(1)} MB after warm-up, ${(result.rssAfterRun / MB).toFixed(1)} MB after the run (${signedMB(result.rssAfterRun - result.rssAfterWarmup)})`,
    `errors: ${result.errors === '' ? 'none' : result.errors}`
  ].join('\n')
}

function signedMB (bytes: number): string {
  const mb = bytes / (1024 * 1024)
  return `${mb >= 0 ? '+' : ''}${mb.toFixed(1)} MB`
}

/** True when what survives a full GC grew past the margin: the leak check of the test and `npm run soak`. */
export function leaked (result: SoakResult): boolean {
  return result.retainedAfterRun - result.retainedAfterWarmup >= RETAINED_MARGIN_BYTES
}
