// Imported first by server.ts, before anything slow loads: a SIGTERM or SIGINT that arrives while the
// relay is still starting (a rollout that replaces a pod right after it started) is held, not
// obeyed by Node.js' default of dying on the spot, and raised again once the real handlers exist.
const held: NodeJS.Signals[] = []
const hold = (signal: NodeJS.Signals): void => { held.push(signal) }
process.on('SIGTERM', hold)
process.on('SIGINT', hold)

/** Called once the real signal handlers are installed: re-raises what arrived before them. */
export function releaseEarlySignals (): void {
  process.off('SIGTERM', hold)
  process.off('SIGINT', hold)
  const first = held[0]
  if (first !== undefined) process.kill(process.pid, first)
}
