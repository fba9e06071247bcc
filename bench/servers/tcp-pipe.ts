// Reference row "raw Node.js TCP pipe": each client connection piped to a connection of its own to
// the upstream, no HTTP work at all. What moving a chunk through Node.js costs (the floor of every
// Node.js relay). Usage: tcp-pipe.ts <port> <upstream URL>.
import { connect, createServer, type AddressInfo } from 'node:net'

const [port = '0', upstream = 'http://127.0.0.1:1'] = process.argv.slice(2)
const { hostname, port: upstreamPort } = new URL(upstream)
const server = createServer((client) => {
  const origin = connect(Number(upstreamPort), hostname)
  for (const [from, to] of [[client, origin], [origin, client]] as const) {
    from.setNoDelay(true)
    from.pipe(to)
    from.on('error', () => {}) // it closes next: the close ends the other side
    from.on('close', () => to.destroy())
  }
})
server.listen(Number(port), '127.0.0.1', () => {
  console.log(JSON.stringify({ msg: 'ready', port: (server.address() as AddressInfo).port }))
})
for (const signal of ['SIGTERM', 'SIGINT'] as const) process.on(signal, () => process.exit(0))
