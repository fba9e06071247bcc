// Fast checks of the image's recipe that need no container engine (`npm run test:container` builds
// and runs the image for real), and of how the smoke script fails where it cannot run.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { PRODUCTION_NODE_OPTIONS } from '../../bench/lib/systems.js'
import { spawnSync } from 'node:child_process'
import { lstatSync, readFileSync, readlinkSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

const ROOT = fileURLToPath(new URL('../../', import.meta.url))
const containerfile = readFileSync(join(ROOT, 'Containerfile'), 'utf8')
// Instructions, with continuation lines joined and comments dropped.
const instructions = containerfile.replace(/\\\n/g, ' ').split('\n').map((line) => line.trim()).filter((line) => line !== '' && !line.startsWith('#'))
const stages = instructions.reduce<string[][]>((all, line) => {
  if (/^FROM\s/i.test(line)) all.push([line])
  else all.at(-1)?.push(line)
  return all
}, [])
const runtime = stages.at(-1) ?? []

test('Containerfile: base images by full name, overridable by build args', () => {
  assert.ok(instructions.includes('ARG NODE_IMAGE=docker.io/library/node:24-alpine'))
  const froms = instructions.filter((line) => /^FROM\s/i.test(line))
  assert.equal(froms.length, 3, 'build, production dependencies, runtime')
  for (const from of froms) assert.match(from, /^FROM (--platform=\$BUILDPLATFORM )?\$\{(BUILD|RUNTIME)_IMAGE\}( AS [\w-]+)?$/, from)
})

test('Containerfile: the runtime stage runs nothing and is the contract', () => {
  assert.deepEqual(runtime.filter((line) => /^RUN\s/i.test(line)), [], 'no RUN: no shell or package manager needed in the base')
  for (const line of ['USER 1000:1000', 'WORKDIR /app', 'EXPOSE 5010', 'STOPSIGNAL SIGTERM', 'ENTRYPOINT []', 'CMD ["node", "dist/server.js"]']) {
    assert.ok(runtime.includes(line), line)
  }
  const env = runtime.filter((line) => line.startsWith('ENV ')).join(' ')
  const arg = (name: string): string => `\${${name}}`
  for (const pair of ['NODE_ENV=production', 'RELAY_PORT=5010', `RELAY_BUILD_VERSION=${arg('VERSION')}`, `RELAY_BUILD_REVISION=${arg('REVISION')}`]) {
    assert.ok(env.includes(pair), pair)
  }
  // The V8 option production runs with: the image, `npm start` and the benchmark's relay agree.
  assert.ok(env.includes(`NODE_OPTIONS=${PRODUCTION_NODE_OPTIONS}`), 'the image sets NODE_OPTIONS')
  const start = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { scripts: Record<string, string> }).scripts.start
  assert.equal(start, `node ${PRODUCTION_NODE_OPTIONS} dist/server.js`)
  const labels = runtime.filter((line) => line.startsWith('LABEL ')).join(' ')
  for (const key of ['source', 'version', 'revision', 'licenses', 'title', 'description']) {
    assert.match(labels, new RegExp(`org\\.opencontainers\\.image\\.${key}=`), key)
  }
  assert.match(labels, /org\.opencontainers\.image\.version="\$\{VERSION\}"/)
  assert.match(labels, /org\.opencontainers\.image\.revision="\$\{REVISION\}"/)
  const copies = runtime.filter((line) => line.startsWith('COPY '))
  assert.equal(copies.length, 3, 'node_modules, dist, package.json')
  for (const copy of copies) assert.match(copy, /--chown=0:0/, `root-owned: ${copy}`)
})

test('.containerignore allows exactly what the Containerfile copies from the context; .dockerignore is the same file', () => {
  const ignore = readFileSync(join(ROOT, '.containerignore'), 'utf8').split('\n').filter((line) => line !== '' && !line.startsWith('#'))
  assert.equal(ignore[0], '*', 'an allow-list')
  const allowed = ignore.filter((line) => line.startsWith('!')).map((line) => line.slice(1).replace(/\/$/, ''))
  const copied = instructions
    .filter((line) => line.startsWith('COPY ') && !line.includes('--from='))
    .flatMap((line) => line.split(/\s+/).slice(1, -1).filter((word) => !word.startsWith('--')))
  assert.deepEqual([...new Set(copied)].sort(), allowed.sort())
  assert.ok(lstatSync(join(ROOT, '.dockerignore')).isSymbolicLink(), 'Docker/BuildKit read .dockerignore, podman .containerignore')
  assert.equal(readlinkSync(join(ROOT, '.dockerignore')), '.containerignore')
})

test('scripts/container-smoke.sh is valid bash (and shellcheck-clean where shellcheck is installed)', (t) => {
  const syntax = spawnSync('bash', ['-n', 'scripts/container-smoke.sh'], { cwd: ROOT, encoding: 'utf8' })
  assert.equal(syntax.status, 0, syntax.stderr)
  const shellcheck = spawnSync('shellcheck', ['scripts/container-smoke.sh'], { cwd: ROOT, encoding: 'utf8' })
  if (shellcheck.error !== undefined) {
    t.diagnostic('shellcheck is not installed: skipped that part')
    return
  }
  assert.equal(shellcheck.status, 0, shellcheck.stdout)
})

function smoke (env: Record<string, string>): { status: number | null, output: string } {
  const { SKIP_CONTAINER_TESTS: _skip, ...inherited } = process.env
  const result = spawnSync('bash', ['scripts/container-smoke.sh'], { cwd: ROOT, encoding: 'utf8', env: { ...inherited, ...env }, timeout: 60_000 })
  return { status: result.status, output: `${result.stdout}${result.stderr}` }
}

test('without podman, the smoke test says so and fails, unless SKIP_CONTAINER_TESTS=1', () => {
  const missing = { PODMAN: '/nonexistent/podman' }
  const failed = smoke(missing)
  assert.equal(failed.status, 1, failed.output)
  assert.match(failed.output, /podman is not available .*could not be installed/)
  assert.match(failed.output, /SKIP_CONTAINER_TESTS=1/)

  const skipped = smoke({ ...missing, SKIP_CONTAINER_TESTS: '1' })
  assert.equal(skipped.status, 0, skipped.output)
  assert.match(skipped.output, /SKIPPED: .*NOT built or tested/)
})

const podman = spawnSync('podman', ['version'], { encoding: 'utf8' }).status === 0
test('a missing base image with no stand-in tool: a clear message naming what to do', { skip: podman ? false : 'podman is not installed' }, () => {
  const result = smoke({ SMOKE_BASE_IMAGE: 'localhost/tokenplace-relay-no-such-base:0', MAKE_NODE_BASE_IMAGE: '/nonexistent/make-node-base-image' })
  assert.equal(result.status, 1, result.output)
  assert.match(result.output, /MAKE_NODE_BASE_IMAGE=\/nonexistent\/make-node-base-image does not exist/)
})
