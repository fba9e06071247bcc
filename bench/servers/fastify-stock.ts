// Reference row "stock Fastify 5 + @fastify/http-proxy, no logging, no metrics": what the relay
// would be with nothing of its own. Usage: fastify-stock.ts <port> <upstream URL>.
import Fastify from 'fastify'
import { fastifyHttpProxy } from '@fastify/http-proxy'

const [port = '0', upstream = 'http://127.0.0.1:1'] = process.argv.slice(2)
const app = Fastify({ logger: false, bodyLimit: Number.MAX_SAFE_INTEGER })
await app.register(fastifyHttpProxy, { upstream })
await app.listen({ port: Number(port), host: '127.0.0.1' })
const address = app.server.address()
console.log(JSON.stringify({ msg: 'ready', port: typeof address === 'object' && address !== null ? address.port : Number(port) }))
for (const signal of ['SIGTERM', 'SIGINT'] as const) process.on(signal, () => process.exit(0))
