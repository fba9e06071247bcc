// The relay logs one JSON object per line (pino) on stdout: every harness reads it this way, from a
// pipe (tests, the soak, a container's attached output) or from a file (the benchmark).
import { waitFor } from './wait.js'

export type LogLine = Record<string, unknown> & { level: string, msg: string, time: string }

/**
 * Collects log output line by line, parsing each. Strict (the default) throws on a line that is not
 * JSON, so a test fails loudly where the relay broke its log format; tolerant keeps such lines in
 * `notJson` for a check that wants to report them itself.
 */
export class LogCollector {
  readonly lines: LogLine[] = []
  readonly raw: string[] = []
  readonly notJson: string[] = []
  readonly #strict: boolean
  #partial = ''

  constructor ({ strict = true } = {}) {
    this.#strict = strict
  }

  write (chunk: string | Buffer): void {
    const text = this.#partial + chunk.toString()
    const parts = text.split('\n')
    this.#partial = parts.pop() ?? ''
    for (const part of parts) {
      if (part === '') continue
      this.raw.push(part)
      let line: LogLine
      try {
        line = JSON.parse(part) as LogLine
      } catch (err) {
        if (this.#strict) throw err
        this.notJson.push(part)
        continue
      }
      this.lines.push(line)
    }
  }

  find (predicate: (line: LogLine) => boolean): LogLine | undefined {
    return this.lines.find(predicate)
  }

  /** The lines with this message, in order. */
  withMsg (msg: string): LogLine[] {
    return this.lines.filter((line) => line.msg === msg)
  }

  async waitFor (predicate: (line: LogLine) => boolean, timeoutMs = 5000, what = 'a log line'): Promise<LogLine> {
    await waitFor(() => this.lines.some(predicate), timeoutMs, what)
    return this.lines.find(predicate) as LogLine
  }
}
