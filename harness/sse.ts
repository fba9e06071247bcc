// A Server-Sent Events client: one stream on a fresh connection (no keep-alive: a client that kept
// an idle connection open would hold a draining relay until its shutdown timeout), each event
// stamped as it arrives. Tests count events, the container check times them, the benchmark compares
// the stamps with the upstream's send times.
import { request, type IncomingHttpHeaders, type IncomingMessage } from 'node:http'
import { once } from 'node:events'

export interface SseEvent {
  /** The event as sent, without the blank line that ended it */
  text: string
  /** The text after `data: ` */
  data: string
  /** process.hrtime.bigint() at arrival: CLOCK_MONOTONIC, the clock another process on this machine reads too */
  receivedNs: bigint
  /** ms from sending the request to the arrival */
  at: number
}

export interface Stream {
  status: number
  headers: IncomingHttpHeaders
  /** The events so far: the array fills as they arrive */
  events: SseEvent[]
  /** Settles when the response ends: complete unless it was cut (or timed out) */
  done: Promise<{ complete: boolean, text: string, total: number }>
}

/** Splits an SSE byte stream into events; returns the events completed and the remainder. */
export function splitSseEvents (buffered: string): { events: string[], rest: string } {
  const parts = buffered.split('\n\n')
  const rest = parts.pop() ?? ''
  return { events: parts.filter((p) => p.trim() !== ''), rest }
}

/** Opens the stream and resolves once the response headers arrived; `timeoutMs` of silence ends it. */
export async function openStream (url: string, timeoutMs?: number): Promise<Stream> {
  const started = process.hrtime.bigint()
  const req = request(url, { agent: false })
  if (timeoutMs !== undefined) req.setTimeout(timeoutMs, () => req.destroy(new Error(`no data from ${url} for ${timeoutMs} ms`)))
  req.end()
  const [res] = await once(req, 'response') as [IncomingMessage]
  const events: SseEvent[] = []
  let text = ''
  let buffered = ''
  const done = new Promise<{ complete: boolean, text: string, total: number }>((resolve) => {
    const end = (complete: boolean): void => resolve({ complete, text, total: Number(process.hrtime.bigint() - started) / 1e6 })
    res.setEncoding('utf8')
    res.on('data', (chunk: string) => {
      const receivedNs = process.hrtime.bigint()
      text += chunk
      const split = splitSseEvents(buffered + chunk)
      buffered = split.rest
      for (const event of split.events) {
        events.push({ text: event, data: event.replace(/^data: /, ''), receivedNs, at: Number(receivedNs - started) / 1e6 })
      }
    })
    res.on('end', () => end(true))
    res.on('error', () => end(false))
    res.on('close', () => end(res.complete))
  })
  return { status: res.statusCode ?? 0, headers: res.headers, events, done }
}
