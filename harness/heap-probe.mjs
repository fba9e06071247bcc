// Loaded into a relay under test (`node --expose-gc --import this-file dist/server.js`): on SIGWINCH it
// collects garbage and writes process.memoryUsage() to the file named by HEAP_PROBE_FILE. A soak
// compares what survives a full GC before and after the load: a leak shows there, while RSS also
// moves with the heap's growth policy and allocator fragmentation (and did, by 58 MB, on a CI run
// that leaked nothing).
// SIGWINCH because its default is to do nothing and nothing in the relay listens to it (close-with-grace
// drains on SIGUSR2, Node.js starts its inspector on SIGUSR1).
import { writeFileSync } from 'node:fs'

const file = process.env.HEAP_PROBE_FILE
if (file !== undefined && typeof globalThis.gc === 'function') {
  process.on('SIGWINCH', () => {
    // Twice: the first pass can leave objects that only its finalizers released.
    globalThis.gc()
    globalThis.gc()
    writeFileSync(file, JSON.stringify(process.memoryUsage()))
  })
}
