// Requests refused before anything else looks at them: too many header fields, a target that is not a
// path, a missing or doubled Host, a transfer coding the relay does not decode, an expectation it
// cannot meet (src/lib/request-rules.ts). Each refusal closes the connection: what follows on it
// cannot be trusted to be framed the way the relay read it.
import fp from 'fastify-plugin'
import type { FastifyPluginAsync } from 'fastify'
import { MAX_HEADER_FIELDS } from '../http-server.js'
import { refusalOf, type Refusal } from '../lib/request-rules.js'
import {
  BadFraming, BadTarget, DuplicateHost, ExpectationFailed, MethodNotAllowed, MissingHost, TooManyHeaders, UnsupportedTransferCoding, withHeaders
} from '../errors.js'
import { PROXIED_METHODS } from '../lib/request-rules.js'

const ALLOW = PROXIED_METHODS.join(', ')

function errorFor (refusal: Refusal, method: string): Error {
  switch (refusal.rule) {
    case 'too-many-headers': return new TooManyHeaders(refusal.limit)
    case 'method': return withHeaders(new MethodNotAllowed(method), { allow: ALLOW })
    case 'target': return new BadTarget()
    case 'missing-host': return new MissingHost()
    case 'duplicate-host': return new DuplicateHost()
    case 'framing': return new BadFraming()
    case 'transfer-coding': return new UnsupportedTransferCoding()
    case 'expectation': return new ExpectationFailed()
  }
}

const requestRulesPlugin: FastifyPluginAsync = async (fastify) => {
  fastify.addHook('onRequest', (request, reply, done) => {
    const raw = request.raw
    const refusal = refusalOf({ method: request.method, url: request.url, httpVersion: raw.httpVersion, rawHeaders: raw.rawHeaders }, MAX_HEADER_FIELDS)
    if (refusal === undefined) {
      done()
      return
    }
    const error = errorFor(refusal, request.method) as Error & { headers?: Record<string, string | number> }
    error.headers = { ...error.headers, connection: 'close' }
    done(error)
  })
}

export default fp(requestRulesPlugin, { name: 'relay-request-rules', fastify: '5.x', dependencies: ['relay-lifecycle'] })
