// wrk (https://github.com/wg/wrk, Debian's `wrk`): the command line, a Lua `done` hook that prints
// the run's summary as one JSON line, and a parser that refuses a run with any error.

/** Printed by WRK_REPORT_LUA at the end of a run, on a line of its own. */
export const WRK_JSON_PREFIX = 'BENCH_JSON '

/**
 * wrk calls `done` once, after all threads stopped. Latency is in microseconds; `%.0f` rather than
 * `%d` so the script works whichever Lua wrk was built with.
 */
export const WRK_REPORT_LUA = `-- written by bench/lib/wrk.ts: prints wrk's summary as one JSON line
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '${WRK_JSON_PREFIX}{"requests":%.0f,"duration_us":%.0f,"bytes":%.0f,' ..
    '"errors":{"connect":%.0f,"read":%.0f,"write":%.0f,"status":%.0f,"timeout":%.0f},' ..
    '"latency_us":{"min":%.0f,"mean":%.2f,"stdev":%.2f,"max":%.0f,"p50":%.0f,"p90":%.0f,"p99":%.0f,"p99_9":%.0f}}\\n',
    summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency.min, latency.mean, latency.stdev, latency.max,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency:percentile(99.9)))
end
`

export interface WrkOptions {
  url: string
  connections: number
  durationSeconds: number
  /** Path of the Lua file holding WRK_REPORT_LUA */
  script: string
  /** A request without a response after this long counts as a timeout error */
  timeoutSeconds?: number
}

export function wrkArgs (o: WrkOptions): string[] {
  // One thread: the load generator has one core.
  return [
    '-t', '1',
    '-c', String(o.connections),
    '-d', `${o.durationSeconds}s`,
    '--timeout', `${o.timeoutSeconds ?? 2}s`,
    '-s', o.script,
    o.url
  ]
}

export interface WrkErrors {
  connect: number
  read: number
  write: number
  /** Responses with a status of 400 or more (wrk's own rule) */
  status: number
  timeout: number
}

export interface WrkResult {
  requests: number
  durationSeconds: number
  requestsPerSecond: number
  latencyUs: { min: number, mean: number, stdev: number, max: number, p50: number, p90: number, p99: number, p99_9: number }
}

export class WrkRunError extends Error {
  override readonly name = 'WrkRunError'
}

/**
 * Reads wrk's stdout. Throws WrkRunError when the summary is missing or malformed, when wrk reports a
 * socket error, a timeout or a non-2xx/3xx answer (in its text or in the JSON), or when nothing was
 * answered: such a run must not be reported.
 */
export function parseWrkOutput (stdout: string): WrkResult {
  const jsonLine = stdout.split('\n').find((line) => line.startsWith(WRK_JSON_PREFIX))
  if (jsonLine === undefined) throw new WrkRunError(`wrk printed no summary line (${WRK_JSON_PREFIX.trim()}): was the Lua script loaded?\n${stdout}`)
  let raw: { requests: number, duration_us: number, bytes: number, errors: WrkErrors, latency_us: WrkResult['latencyUs'] }
  try {
    raw = JSON.parse(jsonLine.slice(WRK_JSON_PREFIX.length))
  } catch (err) {
    throw new WrkRunError(`wrk's summary line is not JSON: ${jsonLine} (${String(err)})`)
  }
  const numbers = [raw.requests, raw.duration_us, raw.bytes, ...Object.values(raw.errors ?? {}), ...Object.values(raw.latency_us ?? {})]
  if (raw.errors === undefined || raw.latency_us === undefined || !numbers.every((n) => typeof n === 'number' && Number.isFinite(n))) {
    throw new WrkRunError(`wrk's summary line is incomplete: ${jsonLine}`)
  }

  const problems: string[] = []
  const e = raw.errors
  if (e.connect + e.read + e.write + e.timeout > 0) {
    problems.push(`socket errors: connect ${e.connect}, read ${e.read}, write ${e.write}, timeout ${e.timeout}`)
  }
  if (e.status > 0) problems.push(`${e.status} answers with a status of 400 or more`)
  // The text lines too, in case a wrk build counts differently from what its Lua API shows.
  const socketLine = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(stdout)
  if (socketLine !== null && socketLine.slice(1).some((n) => Number(n) > 0) && problems.length === 0) {
    problems.push(`wrk reported ${socketLine[0].trim()}`)
  }
  const non2xx = /Non-2xx or 3xx responses: (\d+)/.exec(stdout)
  if (non2xx !== null && Number(non2xx[1]) > 0 && e.status === 0) problems.push(`${non2xx[1]} non-2xx or 3xx responses`)
  if (raw.requests <= 0) problems.push('no request was answered')
  const textRequests = /(\d+) requests in /.exec(stdout)
  if (textRequests !== null && Number(textRequests[1]) !== raw.requests) {
    problems.push(`wrk's text says ${textRequests[1]} requests, its summary ${raw.requests}`)
  }
  if (problems.length > 0) throw new WrkRunError(`refusing this run: ${problems.join('; ')}\n${stdout}`)

  const durationSeconds = raw.duration_us / 1e6
  return {
    requests: raw.requests,
    durationSeconds,
    requestsPerSecond: durationSeconds > 0 ? raw.requests / durationSeconds : 0,
    latencyUs: { ...raw.latency_us }
  }
}
