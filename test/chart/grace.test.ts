// The pod's grace period against the relay's own shutdown backstops (src/shutdown.ts): after delay +
// timeout, a worker (or a single process) gives up after one BACKSTOP_MARGIN_MS and the cluster
// primary after two, each logging what hung. The kubelet's SIGKILL must come after the primary's, with
// time to spare, or a hung drain may never be logged.
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { BACKSTOP_MARGIN_MS } from '../../src/shutdown.js'
import { render, renderNotes } from '../helpers/chart-helm.js'
import { REAL_VALUES } from '../helpers/chart-cases.js'

const MARGIN_SECONDS = BACKSTOP_MARGIN_MS / 1000
/** When the primary's backstop fires, seconds after SIGTERM (src/primary.ts: delay + timeout + 2 margins). */
const primaryBackstop = (delay: number, timeout: number): number => delay + timeout + 2 * MARGIN_SECONDS

const DRAINS: Array<[number, number]> = [[5, 20], [0, 0], [2.5, 45], [0.25, 1234.5], [3600, 3600]]
const CHECK = /CHECK THESE SETTINGS/

describe('terminationGracePeriodSeconds and the relay\'s backstops', { concurrency: true }, () => {
  for (const [delay, timeout] of DRAINS) {
    it(`computed for a drain of ${delay} + ${timeout} s: past the primary's backstop by at least one more margin, whatever relay.workers`, async () => {
      const rendered = await Promise.all([1, 4].map(async (workers) => await render({ relay: { workers, shutdownDelaySeconds: delay, shutdownTimeoutSeconds: timeout } })))
      for (const r of rendered) {
        const grace = r.podSpec.terminationGracePeriodSeconds as number
        assert.ok(Number.isInteger(grace))
        assert.ok(grace - primaryBackstop(delay, timeout) >= MARGIN_SECONDS,
          `grace ${grace} s leaves the primary's backstop at ${primaryBackstop(delay, timeout)} s less than ${MARGIN_SECONDS} s to log and stop its workers`)
        assert.ok(grace <= Math.ceil(delay + timeout) + 3 * MARGIN_SECONDS, `grace ${grace} s: no longer than needed, a rollout waits for it`)
      }
      assert.equal(rendered[0]?.podSpec.terminationGracePeriodSeconds, rendered[1]?.podSpec.terminationGracePeriodSeconds)
    })
  }

  it('the default is 40 s: 5 s delay + 20 s timeout + 15 s', async () => {
    assert.equal((await render({})).podSpec.terminationGracePeriodSeconds, 40)
  })

  it('an explicit grace period at or below the backstop installs, but the notes say it cuts the backstop short', async () => {
    // relay.workers=1: the single process's backstop, delay + timeout + one margin; more workers: the primary's, two.
    const single = 5 + 20 + MARGIN_SECONDS
    const primary = primaryBackstop(5, 20)
    const [atSingle, pastSingle, atPrimary, pastPrimary, computed] = await Promise.all([
      renderNotes({ ...REAL_VALUES, relay: { trustProxy: ['10.42.0.0/16'] }, terminationGracePeriodSeconds: single }),
      renderNotes({ ...REAL_VALUES, relay: { trustProxy: ['10.42.0.0/16'] }, terminationGracePeriodSeconds: single + 1 }),
      renderNotes({ ...REAL_VALUES, relay: { trustProxy: ['10.42.0.0/16'], workers: 2 }, terminationGracePeriodSeconds: primary }),
      renderNotes({ ...REAL_VALUES, relay: { trustProxy: ['10.42.0.0/16'], workers: 2 }, terminationGracePeriodSeconds: primary + 1 }),
      renderNotes({ ...REAL_VALUES, relay: { trustProxy: ['10.42.0.0/16'], workers: 2 } })
    ])
    assert.match(atSingle, CHECK)
    assert.ok(atSingle.includes(`terminationGracePeriodSeconds=${single} ends no later than the relay's own backstop (relay.shutdownDelaySeconds + relay.shutdownTimeoutSeconds + ${MARGIN_SECONDS} s = ${single} s with relay.workers=1)`), atSingle)
    assert.ok(atSingle.includes(`Leave it null (computed: 40) or set it above ${single}.`))
    assert.match(atPrimary, new RegExp(`terminationGracePeriodSeconds=${primary} ends no later than the relay's own backstop \\(.* \\+ ${2 * MARGIN_SECONDS} s = ${primary} s with relay\\.workers=2\\)`))
    for (const notes of [pastSingle, pastPrimary, computed]) assert.doesNotMatch(notes, CHECK)
  })
})
