import type { ServerResponse } from 'node:http'

/** What nginx logs and the metrics count for a client that left before its response was complete */
export const CLIENT_CLOSED_REQUEST = 499

/**
 * The status a response is logged and counted with once it has closed: its own when it was sent in
 * full, or when the relay cut it because the upstream failed mid-body (the response is destroyed with
 * that error); 499 when the client went away first.
 */
export function closedStatus (res: ServerResponse): number {
  return res.writableFinished || (res as { errored?: Error | null }).errored != null ? res.statusCode : CLIENT_CLOSED_REQUEST
}
