// The latency plot of RESULTS.md, written by hand: p50 (dashed) and p99 (solid) against connections,
// one colour per system, both axes logarithmic. Pure: data in, SVG text out.

export interface LatencyPoint { connections: number, p50Ms: number, p99Ms: number }
export interface LatencySeries {
  label: string
  points: LatencyPoint[]
  /** Drawn thicker (the system the benchmark is about) */
  emphasis?: boolean
}

export const PALETTE = ['#1b9e77', '#d95f02', '#7570b3', '#e7298a', '#66a61e', '#e6ab02', '#a6761d', '#666666']

export function escapeXml (text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&apos;')
}

/** Tick values 1, 2, 5 × 10^k covering [lo, hi]. */
export function logTicks (lo: number, hi: number): number[] {
  if (!(lo > 0) || !(hi >= lo)) return []
  const ticks: number[] = []
  for (let e = Math.floor(Math.log10(lo)); e <= Math.ceil(Math.log10(hi)); e++) {
    for (const m of [1, 2, 5]) {
      const v = Number((m * 10 ** e).toPrecision(3))
      if (v >= lo * 0.999 && v <= hi * 1.001) ticks.push(v)
    }
  }
  return ticks
}

function formatMs (v: number): string {
  return v >= 1 ? `${v}` : `${Number(v.toPrecision(2))}`
}

export interface PlotOptions {
  title: string
  subtitle?: string
  /** Axis titles (defaults: wrk's connections, latency in ms) */
  xLabel?: string
  yLabel?: string
}

export function latencySvg (series: readonly LatencySeries[], options: PlotOptions): string {
  const width = 760
  const height = 440
  const margin = { left: 70, right: 230, top: 58, bottom: 52 }
  const plotW = width - margin.left - margin.right
  const plotH = height - margin.top - margin.bottom
  const points = series.flatMap((s) => s.points).filter((p) => p.connections > 0 && p.p50Ms > 0 && p.p99Ms > 0)
  const out: string[] = []
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="12">`)
  out.push(`<rect width="${width}" height="${height}" fill="#ffffff"/>`)
  out.push(`<text x="${margin.left}" y="22" font-size="15" font-weight="bold">${escapeXml(options.title)}</text>`)
  if (options.subtitle !== undefined) out.push(`<text x="${margin.left}" y="40" fill="#555555">${escapeXml(options.subtitle)}</text>`)
  if (points.length === 0) {
    out.push(`<text x="${margin.left}" y="${margin.top + 20}">no latency data</text>`, '</svg>')
    return out.join('\n') + '\n'
  }

  const xs = points.map((p) => p.connections)
  const xLo = Math.min(...xs)
  const xHi = Math.max(...xs)
  const yLo = 10 ** Math.floor(Math.log10(Math.min(...points.map((p) => p.p50Ms))))
  const yHi = 10 ** Math.ceil(Math.log10(Math.max(...points.map((p) => p.p99Ms))))
  const x = (c: number): number => xLo === xHi
    ? margin.left + plotW / 2
    : margin.left + (Math.log(c / xLo) / Math.log(xHi / xLo)) * plotW
  const y = (v: number): number => margin.top + plotH - (Math.log(v / yLo) / Math.log(yHi / yLo)) * plotH
  const f = (v: number): string => v.toFixed(1)

  // Grid and axes.
  for (const t of logTicks(yLo, yHi)) {
    out.push(`<line x1="${margin.left}" x2="${margin.left + plotW}" y1="${f(y(t))}" y2="${f(y(t))}" stroke="#e3e3e3"/>`)
    out.push(`<text x="${margin.left - 6}" y="${f(y(t) + 4)}" text-anchor="end" fill="#333333">${formatMs(t)}</text>`)
  }
  for (const c of [...new Set(xs)].sort((a, b) => a - b)) {
    out.push(`<line x1="${f(x(c))}" x2="${f(x(c))}" y1="${margin.top}" y2="${margin.top + plotH}" stroke="#e3e3e3"/>`)
    out.push(`<text x="${f(x(c))}" y="${margin.top + plotH + 18}" text-anchor="middle" fill="#333333">${c}</text>`)
  }
  out.push(`<rect x="${margin.left}" y="${margin.top}" width="${plotW}" height="${plotH}" fill="none" stroke="#888888"/>`)
  out.push(`<text x="${margin.left + plotW / 2}" y="${height - 12}" text-anchor="middle">${escapeXml(options.xLabel ?? 'concurrent connections (wrk, closed loop)')}</text>`)
  out.push(`<text transform="translate(18 ${margin.top + plotH / 2}) rotate(-90)" text-anchor="middle">${escapeXml(options.yLabel ?? 'latency, ms (log scale)')}</text>`)

  // Series.
  series.forEach((s, i) => {
    const color = PALETTE[i % PALETTE.length] as string
    const pts = [...s.points].filter((p) => p.connections > 0 && p.p50Ms > 0 && p.p99Ms > 0).sort((a, b) => a.connections - b.connections)
    if (pts.length === 0) return
    const w = s.emphasis === true ? 1.5 : 1
    const line = (pick: (p: LatencyPoint) => number): string => pts.map((p) => `${f(x(p.connections))},${f(y(pick(p)))}`).join(' ')
    out.push(`<g class="series" data-system="${escapeXml(s.label)}">`)
    out.push(`<polyline fill="none" stroke="${color}" stroke-width="${2.2 * w}" points="${line((p) => p.p99Ms)}"><title>${escapeXml(s.label)} p99</title></polyline>`)
    out.push(`<polyline fill="none" stroke="${color}" stroke-width="${1.6 * w}" stroke-dasharray="5 4" points="${line((p) => p.p50Ms)}"><title>${escapeXml(s.label)} p50</title></polyline>`)
    for (const p of pts) {
      out.push(`<circle cx="${f(x(p.connections))}" cy="${f(y(p.p99Ms))}" r="3.2" fill="${color}"><title>${escapeXml(s.label)}: p99 ${p.p99Ms.toFixed(2)} ms at ${p.connections}</title></circle>`)
      out.push(`<circle cx="${f(x(p.connections))}" cy="${f(y(p.p50Ms))}" r="2.6" fill="#ffffff" stroke="${color}"><title>${escapeXml(s.label)}: p50 ${p.p50Ms.toFixed(2)} ms at ${p.connections}</title></circle>`)
    }
    out.push('</g>')
    // Legend.
    const ly = margin.top + 10 + i * 22
    const lx = margin.left + plotW + 16
    out.push(`<line x1="${lx}" x2="${lx + 26}" y1="${ly}" y2="${ly}" stroke="${color}" stroke-width="${2.2 * w}"/>`)
    out.push(`<text x="${lx + 32}" y="${ly + 4}"${s.emphasis === true ? ' font-weight="bold"' : ''}>${escapeXml(s.label)}</text>`)
  })
  const ky = margin.top + 20 + series.length * 22
  const kx = margin.left + plotW + 16
  out.push(`<line x1="${kx}" x2="${kx + 26}" y1="${ky}" y2="${ky}" stroke="#333333" stroke-width="2.2"/><text x="${kx + 32}" y="${ky + 4}">p99 (solid)</text>`)
  out.push(`<line x1="${kx}" x2="${kx + 26}" y1="${ky + 18}" y2="${ky + 18}" stroke="#333333" stroke-width="1.6" stroke-dasharray="5 4"/><text x="${kx + 32}" y="${ky + 22}">p50 (dashed)</text>`)
  out.push('</svg>')
  return out.join('\n') + '\n'
}
