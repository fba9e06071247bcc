// Many clients from one test: the relay trusts 127.0.0.1 as its proxy (RELAY_TRUST_PROXY), so the
// address in X-Forwarded-For is the client, as Traefik's would be.
import { request, type IncomingMessage } from 'node:http'
import { once } from 'node:events'

export interface ClientResponse {
  status: number
  headers: IncomingMessage['headers']
  body: string
}

/** One request as the client `ip`, on its own connection; resolves with the whole answer. */
export async function requestAs (ip: string, url: string, options: { method?: string, body?: string, headers?: Record<string, string>, signal?: AbortSignal } = {}): Promise<ClientResponse> {
  const req = request(url, { method: options.method ?? 'GET', agent: false, headers: { 'x-forwarded-for': ip, ...options.headers }, signal: options.signal })
  req.end(options.body)
  const [res] = await once(req, 'response') as [IncomingMessage]
  let body = ''
  res.setEncoding('utf8')
  for await (const chunk of res) body += chunk as string
  return { status: res.statusCode ?? 0, headers: res.headers, body }
}
