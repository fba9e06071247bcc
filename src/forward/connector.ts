// How the pool dials the upstream: undici's own connector (TLS verified against Node's CAs plus
// NODE_EXTRA_CA_CERTS), with two corrections to how undici reads a misbehaving server. Both reach into
// undici's internals, which is why they live here, behind the contract test (test/forward/):
//
// 1. A reset is never an end. undici takes an ECONNRESET on a response without length or chunking
//    (one that ends when the connection closes: SSE from many servers, HTTP/1.0) for its normal end,
//    and the client would get a complete-looking response. Renaming the error's code before undici
//    sees it makes undici fail the response, so the client's connection is cut.
// 2. An interim response nobody asked for is ignored (RFC 9110 §15.2). undici destroys the
//    connection on a `100 Continue` it did not ask for; it is parsed like any other 1xx instead, and
//    the real answer that follows is passed on.
import { createRequire } from 'node:module'
import type { Socket } from 'node:net'
import { buildConnector } from 'undici'
import { UPSTREAM_RESET } from './upstream-errors.js'

const require = createRequire(import.meta.url)
// The symbol undici keeps a socket's HTTP/1.1 parser under.
const { kParser } = require('undici/lib/core/symbols.js') as { kParser: symbol }

type HeadersComplete = (this: unknown, statusCode: number, upgrade: boolean, shouldKeepAlive: boolean) => number
const kPatched = Symbol('relay.interim-100')

export interface ConnectorOptions {
  connectTimeoutMs: number
  /** Called once if undici's parser is not where this module expects it (an undici upgrade moved it). */
  onUnpatched(message: string): void
}

export function upstreamConnector (options: ConnectorOptions): buildConnector.connector {
  const connect = buildConnector({ rejectUnauthorized: true, timeout: options.connectTimeoutMs })
  let patched = false
  return (connectOptions, callback) => {
    connect(connectOptions, (...args) => {
      const [err, socket] = args
      if (err === null && socket !== null) {
        // First in line, before undici's own listener, which decides what the error means.
        socket.prependListener('error', markReset)
        // undici attaches its parser after this callback, within the same turn of the event loop;
        // nothing can arrive before the next one.
        if (!patched) {
          setImmediate(() => {
            if (!patched) patched = patchInterimContinue(socket, options)
          })
        }
      }
      callback(...args)
    })
  }
}

function markReset (err: NodeJS.ErrnoException): void {
  if (err.code === 'ECONNRESET') err.code = UPSTREAM_RESET
}

/** Returns whether the parser is patched now (false: try again with the next connection). */
function patchInterimContinue (socket: Socket, options: ConnectorOptions): boolean {
  const parser = (socket as unknown as Record<symbol, unknown>)[kParser]
  const proto = parser === undefined || parser === null ? undefined : Object.getPrototypeOf(parser) as Record<string | symbol, unknown>
  if (proto === undefined || typeof proto.onHeadersComplete !== 'function') {
    // A socket closed at once never got its parser; a live one without it means undici changed.
    if (socket.destroyed) return false
    options.onUnpatched('undici\'s HTTP/1.1 parser was not found: an unasked 100 Continue from the upstream will fail the request')
    return true
  }
  if (proto[kPatched] === true) return true
  const original = proto.onHeadersComplete as HeadersComplete
  proto.onHeadersComplete = function onHeadersComplete (this: unknown, statusCode: number, upgrade: boolean, shouldKeepAlive: boolean): number {
    // 102 is an interim response undici accepts; the status of an interim one is never shown.
    return original.call(this, statusCode === 100 ? 102 : statusCode, upgrade, shouldKeepAlive)
  }
  proto[kPatched] = true
  return true
}
