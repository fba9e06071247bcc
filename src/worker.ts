// One serving process: the only process with RELAY_WORKERS=1, else one of the cluster's workers.
import type { RelayConfig } from './config.js'
import { buildApp } from './app.js'
import { awaitDrainRequest, handleShutdown } from './shutdown.js'
import { createClusterMetricsClient, shareMetrics } from './cluster-metrics.js'
import { PrimaryGate } from './admission-gate.js'
import { PrimaryRateStore } from './rate-limit-stores.js'
import { needsPrimaryGate, needsPrimaryRateStore } from './coordination.js'

export interface WorkerOptions {
  clustered: boolean
  /** Called once this process's signal handlers are installed */
  onSignalsHandled?: () => void
}

export async function runWorker (config: RelayConfig, { clustered, onSignalsHandled }: WorkerOptions): Promise<void> {
  // Before anything that takes time: the primary may ask this worker to drain while it is starting.
  const drainRequest = clustered ? awaitDrainRequest() : undefined
  if (clustered) onSignalsHandled?.()
  const app = await buildApp(config, {
    collectClusterMetrics: clustered ? createClusterMetricsClient() : undefined,
    cluster: clustered
      ? {
          gate: needsPrimaryGate(config) ? new PrimaryGate() : undefined,
          rateLimitStore: needsPrimaryRateStore(config) ? new PrimaryRateStore() : undefined
        }
      : undefined
  })
  if (clustered) shareMetrics(app.relayMetrics.registry)
  handleShutdown(app, config, { clustered, drainRequest })
  if (!clustered) onSignalsHandled?.()
  // Asked to stop before it ever listened: there is nothing to drain, and nothing must be served.
  if (drainRequest?.requested === true) return

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
