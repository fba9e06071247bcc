// Runs Helm (through scripts/helm) against charts/tokenplace-relay and parses what it renders.
// No cluster is involved: `helm template`, `helm lint` and `helm install --dry-run=client` work offline.
import { execFile } from 'node:child_process'
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { availableParallelism, tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseAllDocuments } from 'yaml'

export const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url))
export const CHART_DIR = fileURLToPath(new URL('../../charts/tokenplace-relay/', import.meta.url))
const HELM_SCRIPT = fileURLToPath(new URL('../../scripts/helm', import.meta.url))

/** The release name and namespace of the issue's install command. */
export const RELEASE = 'relay'
export const NAMESPACE = 'tokenplace'

/** The `--set` arguments of the install command in issue 3. */
export const ISSUE_INSTALL_SET_ARGS = [
  '--set', 'image.repository=ghcr.io/your-org/tokenplace-relay',
  '--set', 'image.tag=sha-abc1234'
]

/** A Kubernetes object as rendered (loosely typed: tests assert on its shape). */
export interface K8sObject {
  apiVersion: string
  kind: string
  metadata: { name: string, namespace?: string, labels?: Record<string, string>, annotations?: Record<string, string> }
  [field: string]: any
}

export interface HelmResult {
  code: number
  stdout: string
  stderr: string
}

// No kubeconfig (nothing may reach a cluster) and Helm's own files out of the developer's home.
const HELM_HOME = join(tmpdir(), 'tokenplace-chart-tests')
const HELM_ENV = {
  KUBECONFIG: '/dev/null',
  // Several helms run at once, each single-threaded: less CPU spent on Go's scheduler and GC threads.
  GOMAXPROCS: '1',
  HELM_CACHE_HOME: join(HELM_HOME, 'cache'),
  HELM_CONFIG_HOME: join(HELM_HOME, 'config'),
  HELM_DATA_HOME: join(HELM_HOME, 'data')
}

let helmPath: Promise<string> | undefined

/**
 * The helm binary scripts/helm resolves (PATH, $HELM_BIN, or the cached npm download).
 * Rejects with scripts/helm's own explanation when Helm can't be had: the tests then fail, never skip.
 */
export function findHelm (): Promise<string> {
  helmPath ??= new Promise((resolve, reject) => {
    execFile('bash', [HELM_SCRIPT, '--print-path'], { cwd: REPO_ROOT, timeout: 300_000 }, (err, stdout, stderr) => {
      const path = stdout.trim()
      if (err !== null || path === '') {
        reject(new Error(`cannot obtain helm through scripts/helm, so the chart can't be tested: ${stderr.trim() || String(err)}`))
      } else {
        resolve(path)
      }
    })
  })
  return helmPath
}

// helm is a Go binary that uses one core per render: run a few at once, not hundreds.
const MAX_CONCURRENT = Math.max(2, availableParallelism())
let running = 0
const waiting: Array<() => void> = []

async function withSlot<T> (fn: () => Promise<T>): Promise<T> {
  if (running >= MAX_CONCURRENT) await new Promise<void>((resolve) => waiting.push(resolve))
  running++
  try {
    return await fn()
  } finally {
    running--
    waiting.shift()?.()
  }
}

/** Runs helm with the given arguments; never rejects on a non-zero exit (the result says). */
export async function helm (args: string[], stdin?: string): Promise<HelmResult> {
  const bin = await findHelm()
  return await withSlot(() => new Promise<HelmResult>((resolve, reject) => {
    const child = execFile(bin, args, {
      cwd: REPO_ROOT,
      timeout: 60_000,
      maxBuffer: 16 * 1024 * 1024,
      env: { ...process.env, ...HELM_ENV }
    }, (err, stdout, stderr) => {
      if (err !== null && typeof err.code !== 'number') {
        reject(err)
        return
      }
      resolve({ code: err === null ? 0 : Number(err.code), stdout, stderr })
    })
    child.stdin?.end(stdin ?? '')
  }))
}

export interface RenderOptions {
  /** Extra helm arguments, e.g. ISSUE_INSTALL_SET_ARGS or ['-f', 'examples/x.yaml']. */
  args?: string[]
  /** Capabilities.KubeVersion, e.g. '1.30.0'. */
  kubeVersion?: string
}

/** Values given as an object are passed on stdin (`-f -`): no quoting issues, no temp files. */
function templateArgs (values: object, options: RenderOptions): string[] {
  const args = ['template', RELEASE, CHART_DIR, '--namespace', NAMESPACE, '-f', '-', ...(options.args ?? [])]
  if (options.kubeVersion !== undefined) args.push('--kube-version', options.kubeVersion)
  return args
}

// The same values render the same objects: tests that share a value set share one helm run.
const templateCache = new Map<string, Promise<HelmResult>>()

/** `helm template` that must succeed; returns the rendered objects (test hooks included). */
export async function render (values: object = {}, options: RenderOptions = {}): Promise<Rendered> {
  const args = templateArgs(values, options)
  const stdin = JSON.stringify(values)
  const key = JSON.stringify([args, stdin])
  let pending = templateCache.get(key)
  if (pending === undefined) {
    pending = helm(args, stdin)
    templateCache.set(key, pending)
  }
  const result = await pending
  if (result.code !== 0) {
    throw new Error(`helm template failed for values ${JSON.stringify(values)} ${(options.args ?? []).join(' ')}:\n${result.stderr}`)
  }
  return new Rendered(parseObjects(result.stdout))
}

/** `helm template` that must fail; returns helm's error output. */
export async function renderError (values: object = {}, options: RenderOptions = {}): Promise<string> {
  const result = await helm(templateArgs(values, options), JSON.stringify(values))
  if (result.code === 0) {
    throw new Error(`helm template succeeded but was expected to fail, for values ${JSON.stringify(values)} ${(options.args ?? []).join(' ')}`)
  }
  return result.stderr
}

let notesChart: string | undefined

/**
 * A copy of the chart whose NOTES.txt is wrapped into an ordinary template, so `helm template` renders
 * it: Helm 3's `helm install --dry-run=client` still wants a cluster, and notes must be testable without.
 */
function notesChartDir (): string {
  if (notesChart === undefined) {
    const dir = mkdtempSync(join(tmpdir(), 'tokenplace-notes-'))
    process.on('exit', () => { rmSync(dir, { recursive: true, force: true }) })
    cpSync(CHART_DIR, dir, { recursive: true })
    const notes = join(dir, 'templates', 'NOTES.txt')
    writeFileSync(join(dir, 'templates', '_notes-under-test.tpl'), `{{- define "notes-under-test" -}}\n${readFileSync(notes, 'utf8')}{{- end }}\n`)
    writeFileSync(join(dir, 'templates', 'notes-under-test.yaml'), 'notes: {{ include "notes-under-test" . | toJson }}\n')
    rmSync(notes)
    notesChart = dir
  }
  return notesChart
}

/** NOTES.txt as Helm prints it after an install, rendered without a cluster. */
export async function renderNotes (values: object = {}, args: string[] = []): Promise<string> {
  const result = await helm(['template', RELEASE, notesChartDir(), '--namespace', NAMESPACE, '-f', '-', ...args, '--show-only', 'templates/notes-under-test.yaml'], JSON.stringify(values))
  if (result.code !== 0) throw new Error(`rendering NOTES.txt failed:\n${result.stderr}`)
  const [doc] = parseObjects(result.stdout) as unknown as Array<{ notes: string }>
  if (typeof doc?.notes !== 'string') throw new Error(`no notes rendered:\n${result.stdout}`)
  return doc.notes
}

/** What `helm install --dry-run=client` shows an operator: every object (test hooks included) and NOTES. */
export interface Installed {
  rendered: Rendered
  notes: string
}

let helmMajor: Promise<number> | undefined

function findHelmMajor (): Promise<number> {
  helmMajor ??= helm(['version', '--short']).then((result) => Number(/^v(\d+)\./.exec(result.stdout.trim())?.[1] ?? NaN))
  return helmMajor
}

/**
 * `helm install --dry-run=client`, as an operator runs it: schema, templates, `fail`s and NOTES.txt in
 * one go, with no cluster (KUBECONFIG=/dev/null). Throws with helm's error when the install is refused.
 * Helm 3's client dry run still checks that a cluster is reachable, so there the same checks run as
 * `helm template` plus the rendered NOTES.txt.
 */
export async function installDryRun (values: object = {}, args: string[] = []): Promise<Installed> {
  const result = await installDryRunResult(values, args)
  if (result.code !== 0) throw new Error(`helm install --dry-run=client failed for values ${JSON.stringify(values)} ${args.join(' ')}:\n${result.stderr}`)
  return parseInstall(result.stdout)
}

/** `helm install --dry-run=client` that must be refused; returns helm's error output. */
export async function installDryRunError (values: object = {}, args: string[] = []): Promise<string> {
  const result = await installDryRunResult(values, args)
  if (result.code === 0) throw new Error(`helm install --dry-run=client succeeded but was expected to fail, for values ${JSON.stringify(values)} ${args.join(' ')}`)
  return result.stderr
}

async function installDryRunResult (values: object, args: string[]): Promise<HelmResult> {
  const stdin = JSON.stringify(values)
  if (await findHelmMajor() < 4) {
    const template = await helm(['template', RELEASE, CHART_DIR, '--namespace', NAMESPACE, '-f', '-', ...args], stdin)
    if (template.code !== 0) return template
    const notes = await renderNotes(values, args)
    const objects = parseObjects(template.stdout)
    const hooks = objects.filter((o) => o.metadata.annotations?.['helm.sh/hook'] !== undefined)
    const manifest = objects.filter((o) => !hooks.includes(o))
    return { ...template, stdout: JSON.stringify({ manifest: stringifyAll(manifest), hooks: hooks.map((o) => ({ manifest: JSON.stringify(o) })), info: { notes } }) }
  }
  return await helm(['install', RELEASE, CHART_DIR, '--namespace', NAMESPACE, '--dry-run=client', '--output', 'json', '-f', '-', ...args], stdin)
}

function stringifyAll (objects: K8sObject[]): string {
  return objects.map((o) => `---\n${JSON.stringify(o)}\n`).join('')
}

function parseInstall (stdout: string): Installed {
  const release = JSON.parse(stdout) as { manifest: string, hooks?: Array<{ manifest: string }>, info: { notes?: string } }
  const objects = [...parseObjects(release.manifest), ...(release.hooks ?? []).flatMap((hook) => parseObjects(hook.manifest))]
  return { rendered: new Rendered(objects), notes: release.info.notes ?? '' }
}

export function parseObjects (text: string): K8sObject[] {
  const objects: K8sObject[] = []
  for (const doc of parseAllDocuments(text)) {
    if (doc.errors.length > 0) throw new Error(`helm rendered invalid YAML: ${doc.errors[0]?.message}`)
    const value: unknown = doc.toJS()
    if (value === null || value === undefined) continue
    objects.push(value as K8sObject)
  }
  return objects
}

/** The objects of one render, with lookups that fail loudly. */
export class Rendered {
  readonly objects: K8sObject[]

  constructor (objects: K8sObject[]) {
    this.objects = objects
  }

  all (kind: string): K8sObject[] {
    return this.objects.filter((o) => o.kind === kind)
  }

  has (kind: string, name?: string): boolean {
    return this.objects.some((o) => o.kind === kind && (name === undefined || o.metadata.name === name))
  }

  /** The only object of that kind (and name), or an error naming what was rendered. */
  one (kind: string, name?: string): K8sObject {
    const found = this.objects.filter((o) => o.kind === kind && (name === undefined || o.metadata.name === name))
    if (found.length !== 1) {
      throw new Error(`expected one ${kind}${name === undefined ? '' : ` named ${name}`}, rendered: ${this.objects.map((o) => `${o.kind}/${o.metadata.name}`).join(', ')}`)
    }
    return found[0] as K8sObject
  }

  get deployment (): K8sObject {
    return this.one('Deployment')
  }

  get podSpec (): any {
    return this.deployment.spec.template.spec
  }

  get container (): any {
    return this.podSpec.containers.find((c: { name: string }) => c.name === 'relay')
  }

  /** The relay container's env as NAME → value (secretKeyRef entries map to `secret:<name>/<key>`). */
  get env (): Record<string, string> {
    const env: Record<string, string> = {}
    for (const e of this.container.env as Array<{ name: string, value?: string, valueFrom?: any }>) {
      const ref = e.valueFrom?.secretKeyRef
      env[e.name] = e.value ?? (ref === undefined ? `valueFrom:${JSON.stringify(e.valueFrom)}` : `secret:${ref.name}/${ref.key}`)
    }
    return env
  }

  /** The relay's own Service (not the GPU one). */
  get relayService (): K8sObject {
    const found = this.all('Service').filter((s) => s.metadata.labels?.['app.kubernetes.io/component'] === 'relay')
    if (found.length !== 1) throw new Error(`expected one relay Service, got ${found.length}`)
    return found[0] as K8sObject
  }

  /** Objects that are helm test hooks. */
  get testHooks (): K8sObject[] {
    return this.objects.filter((o) => o.metadata.annotations?.['helm.sh/hook'] === 'test')
  }
}

/** Whether a matchLabels selector selects an object with these labels. */
export function selects (matchLabels: Record<string, string>, labels: Record<string, string> | undefined): boolean {
  return Object.entries(matchLabels).every(([key, value]) => labels?.[key] === value)
}
