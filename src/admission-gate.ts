// The gate every proxied request passes before it may reach the upstream (src/lib/admission.ts does
// the bookkeeping). With one process the gate is that process's own; in a cluster the primary keeps
// the one Admission for the pod and each worker asks it over IPC, so that RELAY_MAX_CONCURRENT=4 means
// 4 at the upstream whatever RELAY_WORKERS is, and the queue is fair across all of them.
import cluster, { type Worker } from 'node:cluster'
import { Admission, type AdmissionLimits, type AdmissionRefusal, type Ticket } from './lib/admission.js'
import { isMessage, type AdmitRelease, type AdmitRequest, type AdmitResponse } from './cluster-messages.js'

export type GateResult =
  | { admitted: true }
  | { admitted: false, reason: AdmissionRefusal, retryAfterSeconds: number }

/** A request's place at the gate: give it back with release(), whatever became of the request. */
export interface GateHandle { readonly id: number }

export interface Gate {
  /** Calls `onResult` once: at once, or when a slot frees for a queued request. Never after release(). */
  acquire(key: string, onResult: (result: GateResult) => void): GateHandle
  /** The request ended, or gave up waiting. Idempotent. */
  release(handle: GateHandle): void
  /** Requests of this process admitted and not yet released */
  readonly inFlight: number
  /** Requests of this process waiting for an answer */
  readonly queued: number
}

interface LocalHandle extends GateHandle { ticket: Ticket | undefined, onResult: ((result: GateResult) => void) | undefined }

/** The gate of a single process. */
export class LocalGate implements Gate {
  readonly #waiting = new Map<Ticket, LocalHandle>()
  readonly #admission: Admission
  #nextId = 0

  constructor (limits: AdmissionLimits) {
    this.#admission = new Admission(limits, (ticket) => {
      const handle = this.#waiting.get(ticket)
      this.#waiting.delete(ticket)
      const onResult = handle?.onResult
      if (handle !== undefined) handle.onResult = undefined
      onResult?.({ admitted: true })
    })
  }

  get inFlight (): number { return this.#admission.admitted }
  get queued (): number { return this.#admission.waiting }

  acquire (key: string, onResult: (result: GateResult) => void): GateHandle {
    const handle: LocalHandle = { id: ++this.#nextId, ticket: undefined, onResult: undefined }
    const decision = this.#admission.request(key)
    if (decision.outcome === 'refused') {
      onResult({ admitted: false, reason: decision.reason, retryAfterSeconds: this.#admission.retryAfterSeconds() })
      return handle
    }
    handle.ticket = decision.ticket
    if (decision.outcome === 'admitted') {
      onResult({ admitted: true })
    } else {
      handle.onResult = onResult
      this.#waiting.set(decision.ticket, handle)
    }
    return handle
  }

  release (handle: GateHandle): void {
    const local = handle as LocalHandle
    const ticket = local.ticket
    if (ticket === undefined) return
    local.ticket = undefined
    local.onResult = undefined
    this.#waiting.delete(ticket)
    this.#admission.release(ticket)
  }
}

interface RemoteHandle extends GateHandle { state: 'waiting' | 'admitted' | 'released', onResult: ((result: GateResult) => void) | undefined }

/** A cluster worker's gate: the primary decides (serveAdmission below). */
export class PrimaryGate implements Gate {
  readonly #pending = new Map<number, RemoteHandle>()
  #nextId = 0
  #inFlight = 0
  #queued = 0

  constructor () {
    process.on('message', (message) => {
      if (!isMessage<AdmitResponse>(message, 'relay:admitted')) return
      const handle = this.#pending.get(message.id)
      if (handle === undefined || handle.state !== 'waiting') return
      const onResult = handle.onResult
      handle.onResult = undefined
      this.#queued--
      if (message.refused !== undefined) {
        handle.state = 'released'
        this.#pending.delete(message.id)
        onResult?.({ admitted: false, reason: message.refused, retryAfterSeconds: message.retryAfterSeconds ?? 1 })
        return
      }
      handle.state = 'admitted'
      this.#inFlight++
      onResult?.({ admitted: true })
    })
  }

  get inFlight (): number { return this.#inFlight }
  get queued (): number { return this.#queued }

  acquire (key: string, onResult: (result: GateResult) => void): GateHandle {
    const handle: RemoteHandle = { id: ++this.#nextId, state: 'waiting', onResult }
    this.#pending.set(handle.id, handle)
    this.#queued++
    process.send?.({ type: 'relay:admit', id: handle.id, key } satisfies AdmitRequest)
    return handle
  }

  release (handle: GateHandle): void {
    const remote = handle as RemoteHandle
    if (remote.state === 'released') return
    if (remote.state === 'admitted') this.#inFlight--
    else this.#queued--
    remote.state = 'released'
    remote.onResult = undefined
    this.#pending.delete(remote.id)
    // The primary frees the slot, or the place in the queue (also if it admitted it meanwhile).
    process.send?.({ type: 'relay:admit-release', id: remote.id } satisfies AdmitRelease, undefined, {}, () => {})
  }
}

/** Primary: the pod's one Admission, answering every worker; a worker that dies frees all it held. */
export function serveAdmission (limits: AdmissionLimits): void {
  const byWorker = new Map<number, Map<number, Ticket>>()
  const owners = new Map<Ticket, { worker: Worker, id: number }>()
  const send = (worker: Worker, response: AdmitResponse): void => {
    if (worker.isConnected()) worker.send(response, () => {})
  }
  const admission = new Admission(limits, (ticket) => {
    const owner = owners.get(ticket)
    if (owner !== undefined) send(owner.worker, { type: 'relay:admitted', id: owner.id })
  })
  const forget = (workerId: number, id: number): Ticket | undefined => {
    const tickets = byWorker.get(workerId)
    const ticket = tickets?.get(id)
    if (ticket === undefined) return undefined
    tickets?.delete(id)
    owners.delete(ticket)
    return ticket
  }

  cluster.on('message', (worker, message) => {
    if (isMessage<AdmitRequest>(message, 'relay:admit')) {
      const decision = admission.request(message.key)
      if (decision.outcome === 'refused') {
        send(worker, { type: 'relay:admitted', id: message.id, refused: decision.reason, retryAfterSeconds: admission.retryAfterSeconds() })
        return
      }
      let tickets = byWorker.get(worker.id)
      if (tickets === undefined) byWorker.set(worker.id, tickets = new Map())
      tickets.set(message.id, decision.ticket)
      owners.set(decision.ticket, { worker, id: message.id })
      if (decision.outcome === 'admitted') send(worker, { type: 'relay:admitted', id: message.id })
    } else if (isMessage<AdmitRelease>(message, 'relay:admit-release')) {
      const ticket = forget(worker.id, message.id)
      if (ticket !== undefined) admission.release(ticket)
    }
  })
  cluster.on('exit', (worker) => {
    const tickets = byWorker.get(worker.id)
    byWorker.delete(worker.id)
    for (const ticket of tickets?.values() ?? []) {
      owners.delete(ticket)
      admission.release(ticket)
    }
  })
}
