// Reading the relay's /metrics in tests.

export async function metricsText (baseUrl: string): Promise<string> {
  return await (await fetch(`${baseUrl}/metrics`)).text()
}

/** relay_upstream_errors_total by reason */
export async function upstreamErrorCounts (baseUrl: string): Promise<Record<string, number>> {
  const counts: Record<string, number> = {}
  for (const match of (await metricsText(baseUrl)).matchAll(/^relay_upstream_errors_total\{reason="(\w+)"\} (\d+)$/gm)) {
    counts[match[1] as string] = Number(match[2])
  }
  return counts
}
