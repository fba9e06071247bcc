// A steady mixed load (small GETs, POSTs and SSE streams) against the built relay, with its memory
// read before and after: `npm run soak` runs it for a minute, the test suite for 15 seconds.
import { readFileSync } from 'node:fs'
import { setTimeout as sleep } from 'node:timers/promises'
import { spawnRelay } from './relay.js'
import { startUpstream } from './upstreams.js'
import { describeFailures, runLoad, type LoadResult } from './load.js'

/** Growth allowed between warm-up and the end: heap and pool settling, never a leak per request. */
export const RSS_MARGIN_BYTES = 24 * 1024 * 1024

export interface SoakOptions {
  seconds: number
  warmupSeconds: number
  concurrency: number
}

export interface SoakResult {
  load: LoadResult
  rssAfterWarmup: number
  rssAfterRun: number
  /** Unexpected outcomes: failures, non-2xx, truncated bodies */
  errors: string
}

export function rssBytes (pid: number): number {
  const match = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
  return Number(match?.[1]) * 1024
}

export async function runSoak (options: SoakOptions): Promise<SoakResult> {
  const upstream = await startUpstream()
  const relay = await spawnRelay({ UPSTREAM_URL: upstream.url, RELAY_WORKERS: '1' })
  try {
    const pid = relay.child.pid as number
    const mix = { get: 4, post: 3, sse: 1 }
    const sse = { tokens: 10, intervalMs: 20 }
    const warmup = await runLoad({ url: relay.url, concurrency: options.concurrency, durationMs: options.warmupSeconds * 1000, mix, sse })
    await sleep(500)
    const rssAfterWarmup = rssBytes(pid)
    const load = await runLoad({ url: relay.url, concurrency: options.concurrency, durationMs: options.seconds * 1000, mix, sse })
    await sleep(500)
    const rssAfterRun = rssBytes(pid)
    const failures = [...warmup.failures, ...load.failures]
    return { load, rssAfterWarmup, rssAfterRun, errors: failures.length === 0 ? '' : describeFailures(failures) }
  } finally {
    await relay.stop()
    await upstream.close()
  }
}

export function formatSoak (result: SoakResult): string {
  const MB = 1024 * 1024
  const { load } = result
  return [
    `requests: ${load.outcomes.length} in ${(load.elapsedMs / 1000).toFixed(1)} s = ${load.requestsPerSecond.toFixed(0)} req/s`,
    `latency: p50 ${load.p50.toFixed(1)} ms, p99 ${load.p99.toFixed(1)} ms (SSE streams included)`,
    `RSS: ${(result.rssAfterWarmup / MB).toFixed(1)} MB after warm-up, ${(result.rssAfterRun / MB).toFixed(1)} MB after the run (${((result.rssAfterRun - result.rssAfterWarmup) / MB).toFixed(1)} MB)`,
    `errors: ${result.errors === '' ? 'none' : result.errors}`
  ].join('\n')
}
