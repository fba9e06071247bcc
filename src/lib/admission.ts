// Who may go to the GPU now: at most `maxConcurrent` requests at once, the rest waiting in a bounded
// queue that is fair between clients. When a slot frees, it goes to the waiting client with the fewest
// requests already admitted, round-robin among equals, so one client with fifty requests queued
// delays another's single request by a slot or two, not by fifty. Pure bookkeeping: the caller owns
// the timers, the sockets and the answers; the same class runs in a single process and, for a
// cluster, in the primary on behalf of every worker.

export type AdmissionRefusal = 'queue_full' | 'client_concurrency'

export interface AdmissionLimits {
  /** Most requests admitted at once; 0: no cap (requests are still counted, never queued) */
  maxConcurrent: number
  /** Most requests waiting for a slot */
  queueLimit: number
  /** Most requests one client may have admitted or waiting; 0: no limit */
  maxPerClient: number
}

export type TicketState = 'waiting' | 'admitted' | 'released'

export interface Ticket {
  readonly key: string
  readonly requestedAt: number
  state: TicketState
  admittedAt: number
}

export type Decision =
  | { outcome: 'admitted', ticket: Ticket }
  | { outcome: 'queued', ticket: Ticket }
  | { outcome: 'refused', reason: AdmissionRefusal }

interface Client {
  readonly key: string
  admitted: number
  readonly queue: Ticket[]
}

/** Bounds of the Retry-After estimate, in seconds. */
const MIN_RETRY_AFTER = 1
const MAX_RETRY_AFTER = 60

export class Admission {
  readonly #limits: AdmissionLimits
  readonly #onAdmit: (ticket: Ticket) => void
  readonly #now: () => number
  /** Clients with a request admitted or waiting */
  readonly #clients = new Map<string, Client>()
  /** Clients with a request waiting, in round-robin order: the one served last goes to the end */
  readonly #waitingClients = new Map<string, Client>()
  #admitted = 0
  #waiting = 0
  /** How long a slot is held, smoothed (ms); 0 until one was released */
  #averageHoldMs = 0

  constructor (limits: AdmissionLimits, onAdmit: (ticket: Ticket) => void, now: () => number = Date.now) {
    this.#limits = limits
    this.#onAdmit = onAdmit
    this.#now = now
  }

  get admitted (): number { return this.#admitted }
  get waiting (): number { return this.#waiting }

  /** Admits a request at once, queues it, or refuses it. A queued ticket is admitted through onAdmit. */
  request (key: string): Decision {
    const { maxConcurrent, queueLimit, maxPerClient } = this.#limits
    const client = this.#clients.get(key)
    if (maxPerClient > 0 && client !== undefined && client.admitted + client.queue.length >= maxPerClient) {
      return { outcome: 'refused', reason: 'client_concurrency' }
    }
    const now = this.#now()
    const capped = maxConcurrent > 0
    if (capped && (this.#admitted >= maxConcurrent || this.#waiting > 0)) {
      if (this.#waiting >= queueLimit) return { outcome: 'refused', reason: 'queue_full' }
      const ticket: Ticket = { key, requestedAt: now, state: 'waiting', admittedAt: 0 }
      const waiter = client ?? this.#client(key)
      waiter.queue.push(ticket)
      this.#waiting++
      if (!this.#waitingClients.has(key)) this.#waitingClients.set(key, waiter)
      return { outcome: 'queued', ticket }
    }
    const ticket: Ticket = { key, requestedAt: now, state: 'admitted', admittedAt: now }
    this.#admit(client ?? this.#client(key))
    return { outcome: 'admitted', ticket }
  }

  /** The request ended (or left the queue): frees its slot or its place. Idempotent. */
  release (ticket: Ticket): void {
    const client = this.#clients.get(ticket.key)
    if (ticket.state === 'released' || client === undefined) return
    if (ticket.state === 'waiting') {
      const index = client.queue.indexOf(ticket)
      if (index !== -1) client.queue.splice(index, 1)
      this.#waiting--
      if (client.queue.length === 0) this.#waitingClients.delete(ticket.key)
    } else {
      this.#admitted--
      client.admitted--
      const held = this.#now() - ticket.admittedAt
      this.#averageHoldMs = this.#averageHoldMs === 0 ? held : this.#averageHoldMs * 0.8 + held * 0.2
    }
    ticket.state = 'released'
    if (client.admitted === 0 && client.queue.length === 0) this.#clients.delete(ticket.key)
    this.#admitWaiting()
  }

  /**
   * Whole seconds a refused client should wait before trying again: the time the requests ahead of
   * it take to free a slot, judged by how long slots have been held.
   */
  retryAfterSeconds (): number {
    const { maxConcurrent } = this.#limits
    const rounds = maxConcurrent > 0 ? (this.#waiting + 1) / maxConcurrent : 1
    const seconds = Math.ceil((this.#averageHoldMs / 1000) * Math.max(1, rounds))
    return Math.min(MAX_RETRY_AFTER, Math.max(MIN_RETRY_AFTER, seconds))
  }

  #client (key: string): Client {
    const client: Client = { key, admitted: 0, queue: [] }
    this.#clients.set(key, client)
    return client
  }

  #admit (client: Client): void {
    client.admitted++
    this.#admitted++
  }

  #admitWaiting (): void {
    const { maxConcurrent } = this.#limits
    while (this.#waiting > 0 && this.#admitted < maxConcurrent) {
      // The fewest admitted wins; among equals, the first in round-robin order.
      let next: Client | undefined
      for (const client of this.#waitingClients.values()) {
        if (next === undefined || client.admitted < next.admitted) next = client
        if (next.admitted === 0) break
      }
      const client = next as Client
      const ticket = client.queue.shift() as Ticket
      this.#waiting--
      this.#waitingClients.delete(client.key)
      if (client.queue.length > 0) this.#waitingClients.set(client.key, client)
      ticket.state = 'admitted'
      ticket.admittedAt = this.#now()
      this.#admit(client)
      this.#onAdmit(ticket)
    }
  }
}
