// Helm itself (through scripts/helm) and `helm lint --strict` on the defaults and each example.
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { join } from 'node:path'
import { CHART_DIR, ISSUE_INSTALL_SET_ARGS, helm } from '../helpers/chart-helm.js'
import { EXAMPLE_FILES } from '../helpers/chart-cases.js'

describe('scripts/helm', () => {
  it('provides Helm 3.8+ or Helm 4', async () => {
    const result = await helm(['version', '--short'])
    assert.equal(result.code, 0, result.stderr)
    assert.match(result.stdout.trim(), /^v(3\.([89]|[1-9][0-9])|[4-9])\.[0-9]+/)
  })
})

async function lint (args: string[]): Promise<void> {
  const result = await helm(['lint', '--strict', CHART_DIR, ...args])
  assert.equal(result.code, 0, `helm lint --strict ${args.join(' ')} failed:\n${result.stdout}\n${result.stderr}`)
  assert.match(result.stdout, /1 chart\(s\) linted, 0 chart\(s\) failed/)
  assert.doesNotMatch(result.stdout, /\[(WARNING|ERROR)\]/)
}

describe('helm lint --strict', { concurrency: true }, () => {
  it('passes on the defaults', async () => {
    await lint([])
  })

  it('passes with the values of the issue\'s install command', async () => {
    await lint(ISSUE_INSTALL_SET_ARGS)
  })

  it('finds example values files to lint', () => {
    assert.ok(EXAMPLE_FILES.length >= 3, `examples: ${EXAMPLE_FILES.join(', ')}`)
  })

  for (const file of EXAMPLE_FILES) {
    it(`passes on examples/${file}`, async () => {
      await lint(['-f', join(CHART_DIR, 'examples', file)])
    })
  }
})
