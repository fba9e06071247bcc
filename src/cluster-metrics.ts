// /metrics with RELAY_WORKERS > 1: whichever worker a scrape reaches asks the primary, which gathers
// every ready worker's registry and sums them with prom-client's aggregation. Unlike prom-client's own
// clusterMetrics(), a worker that is starting or dying is left out rather than failing the scrape.
import cluster, { type Worker } from 'node:cluster'
import { AggregatorRegistry, type Registry } from 'prom-client'
import {
  isMessage, type MetricsRequest, type MetricsResponse, type SnapshotRequest, type SnapshotResponse
} from './cluster-messages.js'

/** How long the primary waits for each worker's snapshot, then aggregates what it has. */
const SNAPSHOT_TIMEOUT_MS = 1_500
/** How long a worker waits for the primary's sum: past the primary's own wait. */
const SUM_TIMEOUT_MS = 3_000

/** Primary: sums the metrics of the given workers. */
export function createMetricsAggregator (readyWorkers: () => Worker[]): () => Promise<string> {
  let nextId = 0
  const pending = new Map<number, (snapshot: SnapshotResponse['metrics']) => void>()
  cluster.on('message', (_worker, message) => {
    if (isMessage<SnapshotResponse>(message, 'relay:metrics-snapshot')) pending.get(message.id)?.(message.metrics)
  })

  return async function collect () {
    const workers = readyWorkers().filter((worker) => worker.isConnected())
    const id = nextId++
    const snapshots: Array<SnapshotResponse['metrics']> = []
    await new Promise<void>((resolve) => {
      const finish = (): void => { clearTimeout(timer); pending.delete(id); resolve() }
      const timer = setTimeout(finish, SNAPSHOT_TIMEOUT_MS)
      pending.set(id, (snapshot) => {
        snapshots.push(snapshot)
        if (snapshots.length === workers.length) finish()
      })
      const request: SnapshotRequest = { type: 'relay:metrics-snapshot-request', id }
      // A worker that died since the list was made cannot be written to: it simply does not answer.
      for (const worker of workers) worker.send(request, () => {})
      if (workers.length === 0) finish()
    })
    if (snapshots.length === 0) throw new Error('no worker answered the metrics request')
    return await AggregatorRegistry.aggregate(snapshots).metrics()
  }
}

/** Primary: answers the workers' requests for the sum. */
export function serveClusterMetrics (collect: () => Promise<string>): void {
  cluster.on('message', (worker, message) => {
    if (!isMessage<MetricsRequest>(message, 'relay:metrics-request')) return
    const reply = (response: Omit<MetricsResponse, 'type' | 'id'>): void => {
      if (worker.isConnected()) worker.send({ type: 'relay:metrics-response', id: message.id, ...response } satisfies MetricsResponse, () => {})
    }
    collect().then((body) => reply({ body }), (err: Error) => reply({ error: err.message }))
  })
}

/** Worker: hands the primary this process's registry when asked. */
export function shareMetrics (registry: Registry): void {
  process.on('message', (message) => {
    if (!isMessage<SnapshotRequest>(message, 'relay:metrics-snapshot-request')) return
    registry.getMetricsAsJSON().then((metrics) => {
      process.send?.({ type: 'relay:metrics-snapshot', id: message.id, metrics } satisfies SnapshotResponse)
    }, () => { /* the primary aggregates without this worker */ })
  })
}

/** Worker: returns a function that asks the primary for the exposition summed over all workers. */
export function createClusterMetricsClient (): () => Promise<string> {
  let nextId = 0
  const pending = new Map<number, { resolve: (body: string) => void, reject: (err: Error) => void, timer: NodeJS.Timeout }>()
  process.on('message', (message) => {
    if (!isMessage<MetricsResponse>(message, 'relay:metrics-response')) return
    const request = pending.get(message.id)
    if (request === undefined) return
    pending.delete(message.id)
    clearTimeout(request.timer)
    if (message.body !== undefined) request.resolve(message.body)
    else request.reject(new Error(message.error ?? 'no metrics from the primary'))
  })

  return async () => await new Promise((resolve, reject) => {
    const id = nextId++
    const timer = setTimeout(() => {
      pending.delete(id)
      reject(new Error('the primary did not answer the metrics request in time'))
    }, SUM_TIMEOUT_MS)
    pending.set(id, { resolve, reject, timer })
    process.send?.({ type: 'relay:metrics-request', id } satisfies MetricsRequest)
  })
}
