import { randomUUID } from 'node:crypto'

const SANE_REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/

/**
 * The id of a request: the client's X-Request-Id when it is sane (at most 128 characters of
 * `[A-Za-z0-9._:-]`), so a trace can cross the relay, else a random UUID (unique across workers).
 */
export function requestIdFrom (header: string | string[] | undefined): string {
  return typeof header === 'string' && SANE_REQUEST_ID.test(header) ? header : randomUUID()
}
