// Medians, percentiles and per-round ratios: the arithmetic every reported number goes through.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { delayPercentiles, max, median, percentile, rotate, roundDifferences, roundRatios } from '../../bench/lib/stats.js'

test('median: middle value, mean of the middle two, NaN when empty, non-finite values ignored', () => {
  assert.equal(median([3, 1, 2]), 2)
  assert.equal(median([4, 1, 3, 2]), 2.5)
  assert.ok(Number.isNaN(median([])))
  assert.equal(median([NaN, 5, Infinity, 1]), 3)
  const input = [3, 1, 2]
  median(input)
  assert.deepEqual(input, [3, 1, 2], 'the input is not sorted in place')
})

test('percentile: nearest rank, always an observed value', () => {
  const hundred = Array.from({ length: 100 }, (_, i) => i + 1)
  assert.equal(percentile(hundred, 50), 50)
  assert.equal(percentile(hundred, 99), 99)
  assert.equal(percentile(hundred, 100), 100)
  assert.equal(percentile(hundred, 0), 1)
  assert.equal(percentile([5, 1, 9], 99), 9)
  assert.equal(percentile([7], 50), 7)
  assert.ok(Number.isNaN(percentile([], 99)))
  assert.throws(() => percentile([1], 101), RangeError)
})

test('max ignores NaN', () => {
  assert.equal(max([3, NaN, 1]), 3)
  assert.ok(Number.isNaN(max([])))
})

test('ratios and differences are taken within a round, skipping rounds one side lacks', () => {
  const relay = new Map([[1, 3000], [2, 2000], [3, 2500]])
  const nginx = new Map([[1, 12000], [2, 8000], [4, 9000]])
  assert.deepEqual(roundRatios(relay, nginx), [0.25, 0.25])
  assert.deepEqual(roundDifferences(relay, nginx), [-9000, -6000])
  assert.deepEqual(roundRatios(new Map([[1, 5]]), new Map([[1, 0]])), [], 'a zero reference is skipped, not infinite')
})

test('a drift that hits both systems of a round cancels in the per-round ratio', () => {
  // The machine slows down by half in round 2: the absolute numbers move, the ratio does not.
  const a = new Map([[1, 1000], [2, 500]])
  const b = new Map([[1, 4000], [2, 2000]])
  assert.deepEqual(roundRatios(a, b), [0.25, 0.25])
  assert.equal(median(roundRatios(a, b)), 0.25)
})

test('rotate starts each round with a different system', () => {
  assert.deepEqual(rotate(['a', 'b', 'c'], 0), ['a', 'b', 'c'])
  assert.deepEqual(rotate(['a', 'b', 'c'], 1), ['b', 'c', 'a'])
  assert.deepEqual(rotate(['a', 'b', 'c'], 4), ['b', 'c', 'a'])
  assert.deepEqual(rotate(['a', 'b'], -1), ['b', 'a'])
  assert.deepEqual(rotate([], 3), [])
})

test('delay percentiles: nearest rank over a typed array, as percentile() does; NaN when empty', () => {
  const delays = Float64Array.from({ length: 1000 }, (_, i) => 1000 - i)
  assert.deepEqual(delayPercentiles(delays), { p50: 500, p99: 990, max: 1000 })
  assert.equal(delayPercentiles(Float64Array.from([3, 1, 2])).p50, percentile([3, 1, 2], 50))
  assert.ok(Number.isNaN(delayPercentiles(new Float64Array(0)).p99))
})
