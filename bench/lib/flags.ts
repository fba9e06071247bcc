// Option values of `npm run bench` and `npm run bench:pi`, checked with one wording for both.
export function positiveInt (name: string, text: string): number {
  const n = Number(text)
  if (!Number.isSafeInteger(n) || n <= 0) throw new Error(`${name} expects a positive integer, got "${text}"`)
  return n
}

export function positiveInts (name: string, text: string): number[] {
  const values = text.split(',').map((v) => Number(v.trim()))
  if (!values.every((v) => Number.isSafeInteger(v) && v > 0)) throw new Error(`${name} expects a comma-separated list of positive integers, got "${text}"`)
  return values
}

export function positiveNumber (name: string, text: string): number {
  const n = Number(text)
  if (!Number.isFinite(n) || n <= 0) throw new Error(`${name} expects a positive number, got "${text}"`)
  return n
}
