// Polling for a condition, the one way every harness waits: for a relay's ready line, for a port to
// answer, for a count to be reached. A predicate that throws ends the wait at once with its error
// (the process it waits for exited, say), instead of letting the timeout hide why.

/**
 * Resolves when `predicate` holds; rejects after `timeoutMs`. `what` names the condition in the
 * error, and may be a function when the message should say how things stood at the timeout.
 */
export async function waitFor (predicate: () => boolean | Promise<boolean>, timeoutMs = 5000, what: string | (() => string) = 'condition', intervalMs = 10): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!(await predicate())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${typeof what === 'string' ? what : what()}`)
    await new Promise((resolve) => setTimeout(resolve, intervalMs))
  }
}
