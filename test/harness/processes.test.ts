// What every harness relies on to start, wait for and stop processes: log lines, polling, process
// groups and the relay's environment (harness/log-lines.ts, wait.ts, process-group.ts, relay-process.ts).
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { LogCollector } from '../../harness/log-lines.js'
import { groupAlive, killGroup, spawnGroup, stopGroup } from '../../harness/process-group.js'
import { processTree } from '../../harness/proc.js'
import { READY_MSG, readyPort, relayEnv } from '../../harness/relay-process.js'
import { waitFor } from '../../harness/wait.js'

test('log lines: split across chunks, parsed; strict throws on a line that is not JSON, tolerant keeps it', () => {
  const logs = new LogCollector()
  logs.write('{"level":"info","msg":"a","time":"1"}\n{"level":"info",')
  assert.equal(logs.lines.length, 1, 'a partial line waits for the rest')
  logs.write(`"msg":"${READY_MSG}","port":5010,"time":"2"}\n`)
  assert.deepEqual(logs.withMsg(READY_MSG).map((l) => l.port), [5010])
  assert.equal(readyPort(logs.lines), 5010)
  assert.equal(readyPort([]), undefined)
  assert.throws(() => logs.write('npm WARN something\n'), SyntaxError)
  const tolerant = new LogCollector({ strict: false })
  tolerant.write('npm WARN something\n{"level":"info","msg":"a","time":"1"}\n')
  assert.deepEqual(tolerant.notJson, ['npm WARN something'])
  assert.equal(tolerant.lines.length, 1)
  assert.equal(tolerant.raw.length, 2, 'raw keeps every line, in order')
})

test('waitFor: resolves when the condition holds, names it on a timeout, ends at once when the predicate throws', async () => {
  let n = 0
  await waitFor(() => ++n >= 3, 1000)
  assert.equal(n, 3)
  await assert.rejects(waitFor(() => false, 50, () => `the answer (at ${n})`), /timed out after 50 ms waiting for the answer \(at 3\)/)
  const started = Date.now()
  await assert.rejects(waitFor(() => { throw new Error('it exited') }, 5000), /it exited/)
  assert.ok(Date.now() - started < 1000)
})

test('the relay\'s environment: the caller\'s relay settings and NODE_OPTIONS left out, the given ones in', () => {
  const saved = { ...process.env }
  try {
    Object.assign(process.env, { RELAY_PORT: '1', UPSTREAM_URL: 'http://elsewhere.invalid', NODE_OPTIONS: '--import tsx', KEEP_ME: 'yes' })
    const env = relayEnv({ RELAY_WORKERS: '2' })
    assert.equal(env.RELAY_PORT, undefined)
    assert.equal(env.UPSTREAM_URL, undefined)
    assert.equal(env.NODE_OPTIONS, undefined)
    assert.equal(env.KEEP_ME, 'yes')
    assert.equal(env.RELAY_WORKERS, '2')
  } finally {
    for (const name of ['RELAY_PORT', 'UPSTREAM_URL', 'NODE_OPTIONS', 'KEEP_ME']) {
      if (saved[name] === undefined) Reflect.deleteProperty(process.env, name)
      else process.env[name] = saved[name]
    }
  }
})

test('a process group: killing it ends the children too, even when the leader went first', async (t) => {
  // A shell with two children of its own, as the relay's primary has its workers.
  const group = spawnGroup('sh', ['-c', 'sleep 30 & sleep 30 & wait'], { stdio: 'ignore' })
  t.after(async () => await killGroup(group))
  await waitFor(() => processTree(group.pid).length === 3, 2000, 'the shell and its two children')
  process.kill(group.pid, 'SIGKILL') // the leader alone
  await group.exited
  assert.ok(groupAlive(group.pid), 'its children outlive it')
  await killGroup(group)
  // Reaping the orphans can take this machine's init a second.
  await waitFor(() => !groupAlive(group.pid), 5000, 'the group to be gone')
})

test('stopping a group: SIGTERM first, SIGKILL after the grace period for one that ignores it', async () => {
  const polite = spawnGroup('sleep', ['30'], { stdio: 'ignore' })
  await stopGroup(polite, 5000)
  assert.equal((await polite.exited).signal, 'SIGTERM')

  const stubborn = spawnGroup('sh', ['-c', 'trap "" TERM; sleep 30'], { stdio: 'ignore' })
  await waitFor(() => processTree(stubborn.pid).length === 2, 2000, 'the trap set and the sleep started')
  const started = Date.now()
  await stopGroup(stubborn, 300)
  assert.equal((await stubborn.exited).signal, 'SIGKILL')
  assert.ok(Date.now() - started >= 300, 'not before the grace period')
  assert.equal(stubborn.hasExited(), true)
})
