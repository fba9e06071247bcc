// Helm itself (through scripts/helm) and `helm lint --strict` on the defaults and each example.
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { join } from 'node:path'
import { parse as parseYaml } from 'yaml'
import { readmeSection } from '../helpers/readme.js'
import { CHART_DIR, ISSUE_INSTALL_SET_ARGS, helm, render } from '../helpers/chart-helm.js'
import { EXAMPLE_FILES } from '../helpers/chart-cases.js'

describe('scripts/helm', () => {
  it('provides Helm 3.8+ or Helm 4', async () => {
    const result = await helm(['version', '--short'])
    assert.equal(result.code, 0, result.stderr)
    assert.match(result.stdout.trim(), /^v(3\.([89]|[1-9][0-9])|[4-9])\.[0-9]+/)
  })
})

async function lint (args: string[], stdin?: string): Promise<void> {
  const result = await helm(['lint', '--strict', CHART_DIR, ...args], stdin)
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

  it('passes on the values files shown in the README\'s deployment guide, which render without placeholders', async () => {
    const guide = readmeSection('Deploying to Kubernetes')
    const blocks = [...guide.matchAll(/```yaml\n([\s\S]*?)```/g)].map((m) => m[1] as string)
    assert.ok(blocks.length > 0)
    for (const block of blocks) {
      await lint(['-f', '-'], block)
      const r = await render(parseYaml(block))
      assert.doesNotMatch(JSON.stringify(r.objects), /example\.com|203\.0\.113\./)
    }
  })
})
