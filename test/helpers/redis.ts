// A real redis-server for the tests, on a free loopback port, with no persistence; stopped by the test.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { refusedPort, waitFor } from './upstreams.js'

export const REDIS_AVAILABLE = spawnSync('redis-server', ['--version'], { encoding: 'utf8' }).status === 0

export interface RedisServer {
  port: number
  /** With the password in it, as the relay gets it from its Secret */
  url: string
  stop(): Promise<void>
  /** Starts it again on the same port (after stop) */
  start(): Promise<void>
}

export async function startRedis (password: string): Promise<RedisServer> {
  const port = await refusedPort()
  let child: ChildProcess | undefined
  const start = async (): Promise<void> => {
    const server = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--requirepass', password], { stdio: ['ignore', 'pipe', 'pipe'] })
    child = server
    let output = ''
    server.stdout?.on('data', (chunk: Buffer) => { output += chunk.toString() })
    await waitFor(() => output.includes('Ready to accept connections') || server.exitCode !== null, 10_000, 'redis-server to start')
    if (server.exitCode !== null) throw new Error(`redis-server exited: ${output}`)
  }
  const stop = async (): Promise<void> => {
    const server = child
    if (server === undefined || server.exitCode !== null) return
    const exited = new Promise((resolve) => server.once('exit', resolve))
    server.kill('SIGKILL')
    await exited
  }
  await start()
  return { port, url: `redis://:${password}@127.0.0.1:${port}`, stop, start }
}
