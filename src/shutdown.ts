// The drain a pod needs to roll without dropping a request:
//   1. readiness turns 503 "terminating" at once, so Kubernetes stops routing new connections here;
//   2. for RELAY_SHUTDOWN_DELAY_SECONDS the relay keeps serving (endpoint removal takes a moment to
//      reach every node), and every response says `Connection: close`;
//   3. the listener closes, idle connections close, in-flight requests and streams may finish for
//      up to RELAY_SHUTDOWN_TIMEOUT_SECONDS;
//   4. what is still open is ended: a request with no response yet gets 503, a response under way is
//      cut; each is logged and counted before the process exits.
import { setTimeout as sleep } from 'node:timers/promises'
import closeWithGrace from 'close-with-grace'
import type { FastifyInstance } from 'fastify'
import type { RelayConfig } from './config.js'
import { isMessage, type ShutdownMessage } from './cluster-messages.js'

/**
 * Margin past delay + timeout after which close-with-grace exits on its own: our own logic hung. A
 * cluster primary waits twice as long, so that its workers' own backstops come first.
 */
export const BACKSTOP_MARGIN_MS = 5_000
/** How often the drain closes the connections that went idle since the listener closed. */
const IDLE_SWEEP_MS = 200
/** How long the requests ended at the timeout get to write their last answer, log line and count. */
const END_ALL_WAIT_MS = 1_000

export async function drain (app: FastifyInstance, config: RelayConfig, { skipDelay = false } = {}): Promise<void> {
  app.health.beginShutdown()
  if (!skipDelay && config.shutdownDelayMs > 0) await sleep(config.shutdownDelayMs)

  const closed = app.close()
  // Closing the listener closes the connections that are idle at that moment. A keep-alive
  // connection whose response was already under way (its headers said keep-alive) goes idle later
  // and would hold the drain until the timeout: close those as they go idle.
  const sweeper = setInterval(() => app.server.closeIdleConnections(), IDLE_SWEEP_MS)
  const timedOut = await Promise.race([
    closed.then(() => false),
    sleep(config.shutdownTimeoutMs, true, { ref: false })
  ])
  clearInterval(sweeper)
  if (timedOut) {
    app.log.warn({ timeoutSeconds: config.shutdownTimeoutMs / 1000, requests: app.lifecycle.inFlight }, 'shutdown timeout reached: closing the remaining connections')
    await app.lifecycle.endAll(END_ALL_WAIT_MS)
    app.server.closeAllConnections()
    await closed
  }
  app.log.info('shutdown complete')
}

export interface ShutdownOptions {
  /**
   * In a cluster worker the primary owns the signals: it forwards SIGTERM/SIGINT over IPC. A signal
   * that reaches the worker too (Ctrl-C signals the whole process group) starts the same drain and
   * never counts as the "second signal" that would exit at once.
   */
  clustered: boolean
  /** In a cluster worker: the drain request listened for since the worker started */
  drainRequest?: ReturnType<typeof awaitDrainRequest>
}

/**
 * A cluster worker listens for the primary's drain request from its first moment: a message that
 * arrives while the app is still being built would otherwise be lost, and the worker would serve on
 * after the primary asked it to stop. Call it before anything else; `handleShutdown` takes over.
 */
export function awaitDrainRequest (): { requested: boolean, onRequest(listener: () => void): void } {
  let requested = false
  let listener: (() => void) | undefined
  const request = (): void => {
    requested = true
    listener?.()
  }
  process.on('message', (message) => { if (isMessage<ShutdownMessage>(message, 'relay:shutdown')) request() })
  // The primary is gone (killed, OOM): nobody will forward signals or restart us; drain and leave.
  process.on('disconnect', request)
  for (const signal of ['SIGINT', 'SIGTERM'] as const) process.on(signal, request)
  return {
    get requested () { return requested },
    onRequest (fn) {
      listener = fn
      if (requested) fn()
    }
  }
}

/** Installs the signal, IPC and crash handling that runs `drain` once, then exits. */
export function handleShutdown (app: FastifyInstance, config: RelayConfig, { clustered, drainRequest }: ShutdownOptions): void {
  const ownSignals = clustered ? (['SIGINT', 'SIGTERM'] as const) : []
  const grace = closeWithGrace({
    delay: config.shutdownDelayMs + config.shutdownTimeoutMs + BACKSTOP_MARGIN_MS,
    skip: [...ownSignals],
    logger: { error: (message: unknown) => app.log.error(typeof message === 'string' ? message : { err: message }, 'shutdown') },
    onSecondSignal: (signal) => app.log.warn({ signal }, 'second signal: exiting now')
  }, async ({ signal, err }) => {
    if (err !== undefined) {
      app.log.fatal({ err }, 'uncaught error: shutting down')
      await drain(app, config, { skipDelay: true })
      return
    }
    app.log.info({ signal: signal ?? 'primary', delaySeconds: config.shutdownDelayMs / 1000, timeoutSeconds: config.shutdownTimeoutMs / 1000 },
      'shutdown requested: draining')
    await drain(app, config)
  })

  if (!clustered || drainRequest === undefined) return
  let started = false
  drainRequest.onRequest(() => {
    if (started) return
    started = true
    grace.close()
  })
}
