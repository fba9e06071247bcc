// `npm run soak`: the resilience suite's soak for longer (60 s by default, SOAK_SECONDS to change),
// printing its figures. Fails when a request failed or memory kept growing.
import { formatSoak, leaked, runSoak } from '../harness/soak.js'

const seconds = Number(process.env.SOAK_SECONDS ?? 60)
const result = await runSoak({ seconds, warmupSeconds: 10, concurrency: Number(process.env.SOAK_CONCURRENCY ?? 32) })
console.log(formatSoak(result))
const grew = leaked(result)
if (result.errors !== '' || grew) {
  console.error(result.errors !== '' ? 'FAIL: unexpected errors' : 'FAIL: memory grew past the margin')
  process.exitCode = 1
}
