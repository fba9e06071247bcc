// The request target a client sent, reduced to the origin-form path the relay forwards.
// Runs on every request (Fastify's rewriteUrl), so the common case returns at the first check.

const ABSOLUTE_FORM = /^https?:\/\/[^/?#]*/i
// Only targets with "//", a dot segment, an encoded dot or a fragment need the slow path.
const NEEDS_NORMALISING = /\/\/|\/\.|%2e|#/i

/**
 * Returns the path and query to route and forward:
 * - absolute-form (`http://other-host/x`) keeps only its path: the relay never dials another host;
 * - duplicate slashes collapse (`//other-host/x` is the path `/other-host/x`);
 * - dot segments, also percent-encoded ones, are resolved as RFC 3986 section 5.2.4 says;
 * - a fragment is dropped.
 * Anything else (`*`, garbage) is returned unchanged, and the router rejects it.
 */
export function normaliseRequestTarget (target: string): string {
  let pathAndQuery = target
  if (target.charCodeAt(0) !== 47 /* / */) {
    const scheme = ABSOLUTE_FORM.exec(target)
    if (scheme === null) return target
    pathAndQuery = target.slice(scheme[0].length)
    if (pathAndQuery.charCodeAt(0) !== 47) pathAndQuery = '/' + pathAndQuery
  }
  const queryStart = pathAndQuery.indexOf('?')
  const path = queryStart === -1 ? pathAndQuery : pathAndQuery.slice(0, queryStart)
  if (!NEEDS_NORMALISING.test(path)) return pathAndQuery
  const query = queryStart === -1 ? '' : pathAndQuery.slice(queryStart)
  const hash = path.indexOf('#')
  if (hash !== -1) return normalisePath(path.slice(0, hash))
  return normalisePath(path) + query
}

/** Collapses empty segments and resolves `.` and `..` (also written `%2e`) in an absolute path. */
export function normalisePath (path: string): string {
  const segments = path.replace(/%2e/gi, '.').split('/')
  const out: string[] = []
  let trailingSlash = false
  for (let i = 1; i < segments.length; i++) {
    const segment = segments[i] as string
    const last = i === segments.length - 1
    if (segment === '..') {
      out.pop()
    } else if (segment !== '' && segment !== '.') {
      out.push(segment)
      continue
    }
    if (last) trailingSlash = true
  }
  return '/' + out.join('/') + (trailingSlash && out.length > 0 ? '/' : '')
}
