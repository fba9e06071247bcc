// The entry point (`node dist/server.js`): read the configuration, then run the cluster primary or a
// serving process. Invalid configuration stops here, before anything listens.
import { releaseEarlySignals } from './early-signals.js'
import cluster from 'node:cluster'
import { createRequire } from 'node:module'
import { ConfigError, loadConfig, type RelayConfig } from './config.js'
import { createLogger } from './logger.js'

const { version } = createRequire(import.meta.url)('../package.json') as { version: string }

let config: RelayConfig
try {
  config = loadConfig(process.env, { defaultVersion: version })
} catch (err) {
  if (!(err instanceof ConfigError)) throw err
  // One line that says what to fix; the log level itself may be what is wrong, so log at fatal.
  createLogger('fatal').fatal({ variable: err.variable }, err.message)
  process.exit(1)
}

if (config.workers > 1 && cluster.isPrimary) {
  const { runPrimary } = await import('./primary.js')
  runPrimary(config)
  releaseEarlySignals()
} else {
  const { runWorker } = await import('./worker.js')
  await runWorker(config, { clustered: cluster.isWorker, onSignalsHandled: releaseEarlySignals })
}
