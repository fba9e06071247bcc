// Small statistics for the benchmark: medians over rounds, percentiles of samples, and ratios or
// differences taken within a round (both systems measured minutes apart see the same machine).

/** The median of the values (the mean of the middle two for an even count); NaN when empty. */
export function median (values: readonly number[]): number {
  const finite = values.filter((v) => Number.isFinite(v))
  if (finite.length === 0) return NaN
  const sorted = [...finite].sort((a, b) => a - b)
  const mid = sorted.length >> 1
  return sorted.length % 2 === 1 ? sorted[mid] as number : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2
}

/**
 * The p-th percentile (0..100) by the nearest-rank method: the smallest sample with at least p % of
 * the samples at or below it, which is always a value that was observed. NaN when empty.
 */
export function percentile (values: readonly number[], p: number): number {
  if (!(p >= 0 && p <= 100)) throw new RangeError(`percentile must be within 0..100, got ${p}`)
  const finite = values.filter((v) => Number.isFinite(v))
  if (finite.length === 0) return NaN
  const sorted = [...finite].sort((a, b) => a - b)
  const rank = Math.max(1, Math.ceil((p / 100) * sorted.length))
  return sorted[rank - 1] as number
}

export function max (values: readonly number[]): number {
  const finite = values.filter((v) => Number.isFinite(v))
  return finite.length === 0 ? NaN : Math.max(...finite)
}

/**
 * Per-round ratios of `value` to the reference's value in the same round. Rounds where either is
 * missing (or the reference is 0) are skipped, never counted as 0.
 */
export function roundRatios (value: ReadonlyMap<number, number>, reference: ReadonlyMap<number, number>): number[] {
  const ratios: number[] = []
  for (const [round, v] of value) {
    const ref = reference.get(round)
    if (ref === undefined || ref === 0 || !Number.isFinite(ref) || !Number.isFinite(v)) continue
    ratios.push(v / ref)
  }
  return ratios
}

/** Per-round differences `value - reference`, skipping rounds where either is missing. */
export function roundDifferences (value: ReadonlyMap<number, number>, reference: ReadonlyMap<number, number>): number[] {
  const diffs: number[] = []
  for (const [round, v] of value) {
    const ref = reference.get(round)
    if (ref === undefined || !Number.isFinite(ref) || !Number.isFinite(v)) continue
    diffs.push(v - ref)
  }
  return diffs
}

/** `items` rotated left by `by` places: round r of an alternating schedule starts with a different system. */
export function rotate<T> (items: readonly T[], by: number): T[] {
  if (items.length === 0) return []
  const k = ((by % items.length) + items.length) % items.length
  return [...items.slice(k), ...items.slice(0, k)]
}

/** p50, p99 (nearest rank) and max of a set of delays; sorts the array in place. NaN when empty. */
export function delayPercentiles (values: Float64Array): { p50: number, p99: number, max: number } {
  values.sort()
  const rank = (p: number): number => values[Math.max(1, Math.ceil((p / 100) * values.length)) - 1] ?? NaN
  return { p50: rank(50), p99: rank(99), max: values[values.length - 1] ?? NaN }
}
