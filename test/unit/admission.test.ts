import { test } from 'node:test'
import assert from 'node:assert/strict'
import { Admission, type Ticket } from '../../src/lib/admission.js'

function setup (maxConcurrent: number, queueLimit = 100, maxPerClient = 0): { admission: Admission, admitted: Ticket[], clock: { now: number } } {
  const admitted: Ticket[] = []
  const clock = { now: 0 }
  const admission = new Admission({ maxConcurrent, queueLimit, maxPerClient }, (ticket) => admitted.push(ticket), () => clock.now)
  return { admission, admitted, clock }
}

function ticketOf (decision: ReturnType<Admission['request']>): Ticket {
  assert.notEqual(decision.outcome, 'refused')
  return (decision as { ticket: Ticket }).ticket
}

test('below the cap requests are admitted at once; past it they wait, and never more than the cap are admitted', () => {
  const { admission, admitted } = setup(2)
  const a = ticketOf(admission.request('a'))
  const b = ticketOf(admission.request('b'))
  const c = admission.request('c')
  assert.equal(c.outcome, 'queued')
  assert.equal(admission.admitted, 2)
  assert.equal(admission.waiting, 1)
  admission.release(a)
  assert.equal(admitted.length, 1)
  assert.equal(admitted[0]?.key, 'c')
  assert.equal(admission.admitted, 2)
  admission.release(b)
  admission.release(admitted[0] as Ticket)
  assert.equal(admission.admitted, 0)
  assert.equal(admission.waiting, 0)
})

test('without a cap nothing waits, and every request is counted', () => {
  const { admission } = setup(0)
  const tickets = Array.from({ length: 1000 }, () => admission.request('a'))
  assert.ok(tickets.every((t) => t.outcome === 'admitted'))
  assert.equal(admission.admitted, 1000)
  for (const t of tickets) admission.release(ticketOf(t))
  assert.equal(admission.admitted, 0)
})

test('a full queue refuses at once; a queue limit of 0 refuses as soon as the cap is reached', () => {
  const full = setup(1, 2)
  full.admission.request('a')
  full.admission.request('b')
  full.admission.request('c')
  assert.deepEqual(full.admission.request('d'), { outcome: 'refused', reason: 'queue_full' })
  const none = setup(1, 0)
  none.admission.request('a')
  assert.deepEqual(none.admission.request('b'), { outcome: 'refused', reason: 'queue_full' })
})

test('fair between clients: one client\'s fifty queued requests delay another\'s single request by at most two slots', () => {
  const { admission, admitted } = setup(4, 100)
  // Slots are held in the order they were taken and freed one at a time.
  const held = Array.from({ length: 4 }, () => ticketOf(admission.request('greedy')))
  for (let i = 0; i < 50; i++) admission.request('greedy')
  admission.request('modest')
  let seen = 0
  let slots = 0
  while (!admitted.some((t) => t.key === 'modest')) {
    admission.release(held.shift() as Ticket)
    held.push(...admitted.slice(seen))
    seen = admitted.length
    slots++
  }
  assert.ok(slots <= 2, `the modest client waited ${slots} slots`)
  // And the greedy client is not starved either: it keeps the other slots.
  assert.equal(admission.admitted, 4)
})

test('round-robin among clients with as many requests admitted', () => {
  const { admission, admitted } = setup(1, 100)
  const first = ticketOf(admission.request('x'))
  for (const key of ['a', 'a', 'b', 'b', 'c', 'c']) admission.request(key)
  admission.release(first)
  const order: string[] = []
  while (admitted.length > order.length) {
    const ticket = admitted[order.length] as Ticket
    order.push(ticket.key)
    admission.release(ticket)
  }
  assert.deepEqual(order, ['a', 'b', 'c', 'a', 'b', 'c'])
})

test('a request that leaves the queue frees its place and is never admitted', () => {
  const { admission, admitted } = setup(1, 1)
  const running = ticketOf(admission.request('a'))
  const waiting = ticketOf(admission.request('b'))
  admission.release(waiting)
  assert.equal(admission.waiting, 0)
  assert.equal(admission.request('c').outcome, 'queued', 'its place is free again')
  admission.release(running)
  assert.deepEqual(admitted.map((t) => t.key), ['c'])
  admission.release(waiting)
  admission.release(running)
  assert.equal(admission.admitted, 1, 'releasing twice changes nothing')
})

test('per client: admitted plus waiting is capped, whatever the global cap', () => {
  for (const cap of [0, 1]) {
    const { admission } = setup(cap, 100, 2)
    const one = ticketOf(admission.request('a'))
    ticketOf(admission.request('a'))
    assert.deepEqual(admission.request('a'), { outcome: 'refused', reason: 'client_concurrency' })
    assert.notEqual(admission.request('b').outcome, 'refused', 'another client is not limited by it')
    admission.release(one)
    assert.notEqual(admission.request('a').outcome, 'refused')
  }
})

test('Retry-After: at least a second, at most a minute, growing with the hold time and the queue', () => {
  const { admission, admitted, clock } = setup(1, 100)
  assert.equal(admission.retryAfterSeconds(), 1)
  const a = ticketOf(admission.request('a'))
  clock.now = 10_000
  admission.release(a)
  assert.equal(admission.retryAfterSeconds(), 10)
  ticketOf(admission.request('b'))
  for (let i = 0; i < 9; i++) admission.request('c')
  assert.equal(admission.retryAfterSeconds(), 60)
  assert.equal(admitted.length, 0)
})

test('no client is remembered once it has nothing admitted or waiting', () => {
  const { admission, admitted } = setup(1, 10, 3)
  const tickets = ['a', 'b', 'c'].map((key) => admission.request(key))
  for (const d of tickets) if (d.outcome !== 'refused' && d.ticket.state === 'admitted') admission.release(d.ticket)
  while (admitted.length > 0) admission.release(admitted.shift() as Ticket)
  assert.equal(admission.admitted, 0)
  assert.equal(admission.waiting, 0)
  // A client may start over with its full allowance.
  for (let i = 0; i < 3; i++) assert.notEqual(admission.request('a').outcome, 'refused')
})
