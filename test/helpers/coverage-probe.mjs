// Loaded into every relay a test spawns while c8 collects coverage (NODE_V8_COVERAGE is set): on
// SIGXFSZ the process exits at once, normally, so Node.js writes the coverage it has. Tests stop
// relays by killing their process group, and a killed process writes none: without this, what only
// spawned relays run (the cluster primary, the pod-wide limits) would count as never run. SIGXFSZ
// because nothing in the relay uses it and its default would end the process anyway.
process.on('SIGXFSZ', () => process.exit(0))
