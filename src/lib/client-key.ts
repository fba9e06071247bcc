// Who a client is, for the per-client limits: its address (request.ip, which honours
// RELAY_TRUST_PROXY), with an IPv6 address grouped by its /64, since one host holds a whole /64 and
// could otherwise pick a fresh address for every request.
import { isIPv4, isIPv6 } from 'node:net'

export function clientKey (ip: string): string {
  if (isIPv4(ip)) return ip
  if (!isIPv6(ip)) return ip.toLowerCase()
  const groups = expandIPv6(ip)
  // An IPv4 client seen through a dual-stack socket (::ffff:192.0.2.1) is that IPv4 client.
  if (groups.slice(0, 5).every((group) => group === 0) && groups[5] === 0xffff) {
    const [high, low] = [groups[6] as number, groups[7] as number]
    return `${high >> 8}.${high & 0xff}.${low >> 8}.${low & 0xff}`
  }
  return `${groups.slice(0, 4).map((group) => group.toString(16)).join(':')}::/64`
}

/** The eight 16-bit groups of an IPv6 address (`::` expanded, an IPv4 tail converted, a zone dropped). */
function expandIPv6 (ip: string): number[] {
  let address = ip.split('%')[0] as string
  const v4 = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(address)
  if (v4 !== null) {
    const [a, b, c, d] = v4.slice(1).map(Number) as [number, number, number, number]
    address = address.slice(0, v4.index) + `${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`
  }
  const [head = '', tail] = address.split('::')
  const parse = (part: string): number[] => part === '' ? [] : part.split(':').map((group) => parseInt(group, 16))
  const start = parse(head)
  const end = tail === undefined ? [] : parse(tail)
  return [...start, ...new Array<number>(8 - start.length - end.length).fill(0), ...end]
}
