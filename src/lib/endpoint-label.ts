// The `endpoint` label of the request metrics: bounded whatever paths clients send.

export const UNMATCHED = 'unmatched'
export const OTHER = 'other'

const DIGITS = /^[0-9]+$/
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i
const LONG_HEX = /^[0-9a-f]{16,}$/i
// Tokens and generated ids (chatcmpl-8fZ3kQ..., base64url) mix letters and digits and run long.
const TOKEN = /^(?=.*[0-9])(?=.*[A-Za-z])[A-Za-z0-9_~.=+-]{20,}$/
const MAX_LABEL_LENGTH = 128

function isIdLike (segment: string): boolean {
  return DIGITS.test(segment) || UUID.test(segment) || LONG_HEX.test(segment) || TOKEN.test(segment)
}

/** `/v1/jobs/42/result?x=1` becomes `/v1/jobs/:id/result`; a path too long to be a route becomes `other`. */
export function normaliseEndpointPath (url: string): string {
  const queryStart = url.indexOf('?')
  const path = queryStart === -1 ? url : url.slice(0, queryStart)
  const segments = path.split('/')
  for (let i = 0; i < segments.length; i++) {
    const segment = segments[i] as string
    if (segment !== '' && isIdLike(segment)) segments[i] = ':id'
  }
  const label = segments.join('/')
  return label.length > MAX_LABEL_LENGTH ? OTHER : label
}

/**
 * Turns proxied URLs into endpoint labels: memoised (the same few paths repeat), and capped at
 * `maxEndpoints` distinct values per process, past which new paths count as `other`.
 */
export class EndpointLabeler {
  readonly #maxEndpoints: number
  readonly #seen = new Set<string>()
  readonly #memo = new Map<string, string>()
  readonly #memoSize: number

  constructor (maxEndpoints: number, memoSize = 1024) {
    this.#maxEndpoints = maxEndpoints
    this.#memoSize = memoSize
  }

  label (url: string): string {
    if (url.charCodeAt(0) !== 47 /* / */) return UNMATCHED
    const queryStart = url.indexOf('?')
    const path = queryStart === -1 ? url : url.slice(0, queryStart)
    const memoised = this.#memo.get(path)
    if (memoised !== undefined) return memoised
    let label = normaliseEndpointPath(path)
    if (label !== OTHER && !this.#seen.has(label)) {
      if (this.#seen.size < this.#maxEndpoints) this.#seen.add(label)
      else label = OTHER
    }
    // Random URLs must not grow the memo without bound: start over when it is full.
    if (this.#memo.size >= this.#memoSize) this.#memo.clear()
    this.#memo.set(path, label)
    return label
  }
}
