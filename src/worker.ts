// One serving process: the only process with RELAY_WORKERS=1, else one of the cluster's workers.
import { AggregatorRegistry } from 'prom-client'
import type { RelayConfig } from './config.js'
import { buildApp } from './app.js'
import { handleShutdown } from './shutdown.js'
import { isMessage, type MetricsRequest, type MetricsResponse } from './cluster-messages.js'

/** Longer than prom-client's own 5 s aggregation timeout, so its error arrives first. */
const CLUSTER_METRICS_TIMEOUT_MS = 6_000

export async function runWorker (config: RelayConfig, { clustered }: { clustered: boolean }): Promise<void> {
  const app = await buildApp(config, {
    collectClusterMetrics: clustered ? createClusterMetricsClient() : undefined
  })
  if (clustered) {
    // Answer the primary's aggregation requests with this process's registry.
    AggregatorRegistry.setRegistries([app.relayMetrics.registry])
    // Constructing one installs prom-client's IPC listener in this worker.
    new AggregatorRegistry() // eslint-disable-line no-new
  }
  handleShutdown(app, config, { clustered })

  try {
    await app.listen({ port: config.port, host: config.host })
  } catch (err) {
    app.log.fatal({ err, port: config.port, host: config.host }, 'cannot listen')
    process.exit(1)
  }
  const address = app.server.address()
  app.log.info({
    port: typeof address === 'object' && address !== null ? address.port : config.port,
    upstream: config.upstream.url,
    workers: config.workers,
    version: config.build.version,
    revision: config.build.revision,
    metricsAuth: config.metricsToken !== undefined
  }, 'relay ready')
}

/** Asks the primary for the exposition summed over all workers. */
function createClusterMetricsClient (): () => Promise<string> {
  let nextId = 0
  const pending = new Map<number, { resolve: (body: string) => void, reject: (err: Error) => void, timer: NodeJS.Timeout }>()
  process.on('message', (message) => {
    if (!isMessage<MetricsResponse>(message, 'relay:metrics-response')) return
    const request = pending.get(message.id)
    if (request === undefined) return
    pending.delete(message.id)
    clearTimeout(request.timer)
    if (message.body !== undefined) request.resolve(message.body)
    else request.reject(new Error(message.error ?? 'no metrics from the primary'))
  })

  return () => new Promise((resolve, reject) => {
    const id = nextId++
    const timer = setTimeout(() => {
      pending.delete(id)
      reject(new Error('the primary did not answer the metrics request in time'))
    }, CLUSTER_METRICS_TIMEOUT_MS)
    pending.set(id, { resolve, reject, timer })
    const request: MetricsRequest = { type: 'relay:metrics-request', id }
    process.send?.(request)
  })
}
