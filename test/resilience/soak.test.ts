// A bounded soak: steady concurrency for 15 s, zero unexpected errors, and no growth past warm-up in
// the memory that survives a full GC. `npm run soak` runs the same for 60 s.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { formatSoak, leaked, runSoak } from '../../harness/soak.js'

test('15 s of mixed load: no unexpected error, no leak', async (t) => {
  const result = await runSoak({ seconds: 15, warmupSeconds: 5, concurrency: 20 })
  t.diagnostic(formatSoak(result))
  assert.equal(result.errors, '')
  assert.ok(result.load.outcomes.length > 1000, `${result.load.outcomes.length} requests`)
  assert.ok(!leaked(result), formatSoak(result))
})
