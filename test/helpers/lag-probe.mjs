// Loaded into a relay under test (`node --import this-file dist/server.js`): on SIGURG its event loop
// is kept busy, LAG_PROBE_BUSY_MS of every LAG_PROBE_EVERY_MS, for LAG_PROBE_FOR_MS: the lag of a Pi at
// its CPU limit, on demand. SIGURG because its default is to do nothing and nothing in the relay
// listens to it.
const busyMs = Number(process.env.LAG_PROBE_BUSY_MS ?? 150)
const everyMs = Number(process.env.LAG_PROBE_EVERY_MS ?? 200)
const forMs = Number(process.env.LAG_PROBE_FOR_MS ?? 3000)

process.on('SIGURG', () => {
  const until = Date.now() + forMs
  const timer = setInterval(() => {
    if (Date.now() > until) { clearInterval(timer); return }
    const end = Date.now() + busyMs
    while (Date.now() < end) { /* busy */ }
  }, everyMs - busyMs)
})
