// The cluster primary (RELAY_WORKERS > 1): forks the workers, replaces one that dies, gives up when they
// crash-loop (so Kubernetes restarts the pod), answers the workers' metrics requests with the sum over
// the ready ones (cluster-metrics.ts), and turns SIGTERM/SIGINT into an orderly drain of every worker.
import cluster, { type Worker } from 'node:cluster'
import closeWithGrace from 'close-with-grace'
import type { Logger } from 'pino'
import type { RelayConfig } from './config.js'
import { createLogger } from './logger.js'
import type { ShutdownMessage } from './cluster-messages.js'
import { createMetricsAggregator, serveClusterMetrics } from './cluster-metrics.js'
import { BACKSTOP_MARGIN_MS } from './shutdown.js'
import { serveAdmission } from './admission-gate.js'
import { serveRateLimit } from './rate-limit-stores.js'
import { needsPrimaryGate, needsPrimaryRateStore } from './coordination.js'

/** Restart delays grow from the first to the last value while workers keep dying. */
const BACKOFF_MS = [250, 500, 1_000, 2_000, 5_000]
/** Workers that die before they ever listened, in a row, before the primary gives up (e.g. port taken). */
const MAX_STARTUP_FAILURES = 3
/** Unexpected exits within CRASH_WINDOW_MS before the primary gives up. */
const MAX_CRASHES = 10
const CRASH_WINDOW_MS = 60_000

export interface CrashPolicy {
  /** Records an unexpected exit; returns the delay before the replacement, or undefined to give up. */
  onCrash(now: number, startedListening: boolean): number | undefined
}

/** Pure bookkeeping of worker deaths, so the policy can be tested without forking anything. */
export function createCrashPolicy (): CrashPolicy {
  let startupFailures = 0
  let crashes: number[] = []
  return {
    onCrash (now, startedListening) {
      startupFailures = startedListening ? 0 : startupFailures + 1
      crashes = [...crashes.filter((at) => now - at < CRASH_WINDOW_MS), now]
      if (startupFailures >= MAX_STARTUP_FAILURES || crashes.length >= MAX_CRASHES) return undefined
      return BACKOFF_MS[Math.min(crashes.length, BACKOFF_MS.length) - 1]
    }
  }
}

export function runPrimary (config: RelayConfig): void {
  const log = createLogger(config.logLevel)
  const policy = createCrashPolicy()
  const listening = new WeakSet<Worker>()
  let stopping = false
  let failedWorkers = 0
  let allExited: (() => void) | undefined

  const fork = (): void => {
    const worker = cluster.fork()
    worker.once('listening', () => {
      listening.add(worker)
      // A drain request sent while this worker was starting may have arrived before it listened for
      // one: ask again now that it certainly does.
      if (stopping) askToDrain(worker)
    })
  }

  const liveWorkers = (): Worker[] => Object.values(cluster.workers ?? {}).filter((w): w is Worker => w !== undefined)

  cluster.on('exit', (worker, code, signal) => {
    if (stopping) {
      if (code !== 0) failedWorkers++
      log.info({ workerPid: worker.process.pid, code, signal }, 'worker stopped')
      if (liveWorkers().length === 0) allExited?.()
      return
    }
    const delay = policy.onCrash(Date.now(), listening.has(worker))
    if (delay === undefined) {
      log.fatal({ workerPid: worker.process.pid, code, signal }, 'workers keep crashing: giving up so the pod is restarted')
      for (const w of liveWorkers()) w.process.kill('SIGKILL')
      process.exit(1)
    }
    log.error({ workerPid: worker.process.pid, code, signal, restartInMs: delay }, 'worker died unexpectedly: replacing it')
    setTimeout(() => { if (!stopping) fork() }, delay)
  })

  // The pod-wide limits: one GPU queue and one rate-limit count, whichever worker a client reaches.
  if (needsPrimaryGate(config)) {
    const { maxConcurrent, queueLimit, maxConcurrentPerClient } = config.limits
    serveAdmission({ maxConcurrent, queueLimit, maxPerClient: maxConcurrentPerClient })
  }
  if (needsPrimaryRateStore(config)) serveRateLimit()

  // Only workers that listen have their registry wired up: a starting one is not asked yet.
  serveClusterMetrics(createMetricsAggregator(() => liveWorkers().filter((worker) => listening.has(worker))))

  closeWithGrace({
    // Past the workers' own backstop (delay + timeout + one margin): they exit first if they can.
    delay: config.shutdownDelayMs + config.shutdownTimeoutMs + 2 * BACKSTOP_MARGIN_MS,
    logger: { error: (message: unknown) => log.error(typeof message === 'string' ? message : { err: message }, 'shutdown') },
    onSecondSignal: (signal) => {
      log.warn({ signal }, 'second signal: stopping the workers now')
      for (const worker of liveWorkers()) worker.process.kill('SIGKILL')
    },
    onTimeout: () => {
      log.error('workers did not stop in time: killing them')
      for (const worker of liveWorkers()) worker.process.kill('SIGKILL')
    }
  }, async ({ signal, err }) => {
    stopping = true
    if (err !== undefined) log.fatal({ err }, 'uncaught error in the primary: stopping the workers')
    else log.info({ signal, workers: liveWorkers().length }, 'shutdown requested: draining the workers')
    await stopWorkers(log, liveWorkers(), (resolve) => { allExited = resolve })
    if (failedWorkers > 0) throw new Error(`${failedWorkers} worker(s) exited with an error during shutdown`)
    log.info('all workers stopped')
  })

  log.info({ workers: config.workers, port: config.port }, 'starting workers')
  for (let i = 0; i < config.workers; i++) fork()
}

function askToDrain (worker: Worker): void {
  const message: ShutdownMessage = { type: 'relay:shutdown' }
  if (worker.isConnected()) worker.send(message, () => {})
  else worker.process.kill('SIGTERM')
}

async function stopWorkers (log: Logger, workers: Worker[], onAllExited: (resolve: () => void) => void): Promise<void> {
  if (workers.length === 0) return
  const exited = new Promise<void>((resolve) => onAllExited(resolve))
  for (const worker of workers) askToDrain(worker)
  log.debug({ workers: workers.length }, 'asked the workers to drain')
  await exited
}
