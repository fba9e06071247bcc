// Readiness check: does the upstream's host name resolve? Cached, so probes stay cheap, and bounded in
// time, so a slow resolver never holds a probe for long.
import { lookup as dnsLookup } from 'node:dns/promises'
import { isIP } from 'node:net'

export interface DnsCheckResult {
  ok: boolean
  /** The resolver's error code when not ok */
  error?: string
}

export interface DnsCheckOptions {
  /** How long a result is reused */
  ttlMs?: number
  lookup?: (hostname: string) => Promise<unknown>
}

export class DnsCheck {
  readonly hostname: string
  readonly #ttlMs: number
  readonly #lookup: (hostname: string) => Promise<unknown>
  #last: (DnsCheckResult & { at: number }) | undefined
  #inflight: Promise<DnsCheckResult> | undefined

  constructor (hostname: string, options: DnsCheckOptions = {}) {
    this.hostname = hostname
    this.#ttlMs = options.ttlMs ?? 5000
    this.#lookup = options.lookup ?? ((name) => dnsLookup(name))
  }

  /** An IP literal needs no resolver. */
  get needed (): boolean {
    return isIP(this.hostname) === 0
  }

  /**
   * The current result: cached if fresh, else a new lookup awaited for at most `maxWaitMs`; when that is
   * not enough, the previous result stands (or a failure, if there is none yet).
   */
  async check (maxWaitMs: number): Promise<DnsCheckResult> {
    if (!this.needed) return { ok: true }
    const last = this.#last
    if (last !== undefined && Date.now() - last.at < this.#ttlMs) return last
    this.#inflight ??= this.#resolve()
    let timer: NodeJS.Timeout | undefined
    const waited = await Promise.race([
      this.#inflight,
      new Promise<undefined>((resolve) => { timer = setTimeout(() => resolve(undefined), maxWaitMs) })
    ])
    clearTimeout(timer)
    return waited ?? this.#last ?? { ok: false, error: 'ETIMEOUT' }
  }

  async #resolve (): Promise<DnsCheckResult> {
    let result: DnsCheckResult
    try {
      await this.#lookup(this.hostname)
      result = { ok: true }
    } catch (err) {
      result = { ok: false, error: (err as { code?: string }).code ?? 'ERROR' }
    }
    this.#last = { ...result, at: Date.now() }
    this.#inflight = undefined
    return result
  }
}
