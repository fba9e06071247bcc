// The README's sections, for tests that check the documentation says what the code does.
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'

export const README = fileURLToPath(new URL('../../README.md', import.meta.url))

/** The text of `## <title>` up to the next second-level heading; throws when the section is missing. */
export function readmeSection (title: string): string {
  const text = readFileSync(README, 'utf8')
  const start = text.indexOf(`\n## ${title}\n`)
  if (start === -1) throw new Error(`README.md has no "## ${title}" section`)
  const end = text.indexOf('\n## ', start + 1)
  return text.slice(start, end === -1 ? undefined : end)
}
