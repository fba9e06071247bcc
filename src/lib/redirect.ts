// What nginx's `proxy_redirect default` does: a Location (or Content-Location) the upstream writes
// with its own address becomes a path the client can follow through the relay, and the GPU host's
// address never reaches the client. A Flask/Werkzeug 308 to add a trailing slash is the usual case.

export interface UpstreamOrigin {
  /** scheme://host:port as the URL parser writes it (lowercase host, default port omitted) */
  origin: string
  /** The path prefix of UPSTREAM_URL without its trailing slash ('' for none) */
  basePath: string
}

/**
 * Returns the value to send the client: an absolute URL on the upstream's origin, or a path under its
 * base path, becomes the path the client asks the relay for; anything else passes unchanged.
 */
export function rewriteLocation (value: string, upstream: UpstreamOrigin): string {
  let path: string | undefined
  if (value.charCodeAt(0) === 47 /* / */) {
    // A path, or a network-path reference (//host/x), which names a host like an absolute URL does.
    if (value.charCodeAt(1) !== 47) path = value
    else path = pathOnOrigin(`http:${value}`, upstream.origin.replace(/^https?:/, 'http:'))
  } else if (/^https?:\/\//i.test(value)) {
    path = pathOnOrigin(value, upstream.origin)
  }
  if (path === undefined) return value
  const { basePath } = upstream
  if (basePath === '') return path
  if (path === basePath) return '/'
  if (path.startsWith(basePath) && '/?#'.includes(path.charAt(basePath.length))) return path.slice(basePath.length).replace(/^(?=[?#])/, '/')
  // A path outside the base path cannot be reached through the relay: keep it as the upstream wrote
  // it (on the relay's origin, without the upstream's address).
  return path
}

/** The path, query and fragment of `value` when it is on `origin`, else undefined. */
function pathOnOrigin (value: string, origin: string): string | undefined {
  let url: URL
  try {
    url = new URL(value)
  } catch {
    return undefined
  }
  if (url.origin !== origin) return undefined
  return url.pathname + url.search + url.hash
}
