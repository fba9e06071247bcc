// One serving process: the only process with RELAY_WORKERS=1, else one of the cluster's workers.
import type { RelayConfig } from './config.js'
import { buildApp } from './app.js'
import { handleShutdown } from './shutdown.js'
import { createClusterMetricsClient, shareMetrics } from './cluster-metrics.js'

export async function runWorker (config: RelayConfig, { clustered }: { clustered: boolean }): Promise<void> {
  const app = await buildApp(config, {
    collectClusterMetrics: clustered ? createClusterMetricsClient() : undefined
  })
  if (clustered) shareMetrics(app.relayMetrics.registry)
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
