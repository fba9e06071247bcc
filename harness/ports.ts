// Loopback ports for programs that must be told one (nginx, HAProxy, a container's relay) and for
// tests that need a port nothing listens on.
import { createServer, type AddressInfo } from 'node:net'
import { once } from 'node:events'

/** A port that was free on 127.0.0.1 a moment ago: connecting to it now is refused. */
export async function freePort (): Promise<number> {
  const server = createServer()
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const { port } = server.address() as AddressInfo
  server.close()
  await once(server, 'close')
  return port
}
