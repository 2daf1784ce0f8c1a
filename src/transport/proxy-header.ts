/**
 * The PROXY protocol v1 line that tor puts in front of every stream to an onion service configured
 * with `HiddenServiceExportCircuitID haproxy` (spec.torproject.org/haproxy-proxy.html). Pure: no I/O.
 *
 *   "PROXY" SP "TCP6" SP srcaddr SP dstaddr SP srcport SP dstport CRLF       (at most 107 bytes)
 *   e.g.  PROXY TCP6 fc00:dead:beef:4dad::1:2a ::1 65535 80\r\n
 *
 * Tor writes the rendezvous circuit's 32-bit global identifier in the low 32 bits of srcaddr (the
 * upper 96 are a fixed private prefix) and keeps srcaddr the same for every stream of a circuit: it
 * is what lets the listener keep counters per circuit across reconnects. "PROXY UNKNOWN …" and TCP4
 * lines are accepted too (the scope is then the whole source address).
 */
import { TransportError } from './errors.js';

function bad(message: string): TransportError {
  return new TransportError('BAD_PROXY_HEADER', message);
}

/** The longest v1 line the protocol allows, CRLF included. */
export const MAX_PROXY_LINE_BYTES = 107;

export interface ProxyHeader {
  family: 'TCP4' | 'TCP6' | 'UNKNOWN';
  source?: string;
  /** The tor circuit id (low 32 bits of a TCP6 source), when the line carries one. */
  circuitId?: number;
  sourcePort?: number;
  destPort?: number;
}


/** The 32-bit value in the low half of an IPv6 address's last two groups; undefined if not IPv6. */
function low32(addr: string): number | undefined {
  if (!/^[0-9a-f:]+$/i.test(addr) || !addr.includes(':')) return undefined;
  let groups: string[];
  if (addr.includes('::')) {
    const [head, tail] = addr.split('::') as [string, string];
    const h = head ? head.split(':') : [];
    const t = tail ? tail.split(':') : [];
    if (h.length + t.length > 7) return undefined;
    groups = [...h, ...Array<string>(8 - h.length - t.length).fill('0'), ...t];
  } else groups = addr.split(':');
  if (groups.length !== 8 || groups.some((g) => g.length < 1 || g.length > 4)) return undefined;
  return parseInt(groups[6]!, 16) * 0x10000 + parseInt(groups[7]!, 16);
}

/**
 * Finds and parses the line at the start of `buf`. Returns undefined while the line is incomplete
 * (read more), or the header and how many bytes it took. Throws TransportError BAD_PROXY_HEADER if the bytes are not
 * a PROXY v1 line.
 */
export function parseProxyHeader(buf: Uint8Array): { header: ProxyHeader; length: number } | undefined {
  const prefix = 'PROXY ';
  for (let i = 0; i < Math.min(prefix.length, buf.length); i++) {
    if (buf[i] !== prefix.charCodeAt(i)) throw bad('not a PROXY protocol v1 line');
  }
  let end = -1;
  for (let i = 0; i < Math.min(buf.length, MAX_PROXY_LINE_BYTES) - 1; i++) {
    if (buf[i] === 0x0d && buf[i + 1] === 0x0a) {
      end = i;
      break;
    }
  }
  if (end < 0) {
    if (buf.length >= MAX_PROXY_LINE_BYTES) throw bad('PROXY line longer than 107 bytes');
    return undefined;
  }
  let line = '';
  for (let i = 0; i < end; i++) {
    const c = buf[i]!;
    if (c < 0x20 || c > 0x7e) throw bad('PROXY line is not printable ASCII');
    line += String.fromCharCode(c);
  }
  const parts = line.split(' ');
  const family = parts[1];
  if (family === 'UNKNOWN') return { header: { family }, length: end + 2 };
  if ((family !== 'TCP4' && family !== 'TCP6') || parts.length !== 6) throw bad(`malformed PROXY line`);
  const [, , source, , sp, dp] = parts as [string, string, string, string, string, string];
  const port = (p: string) => {
    if (!/^[0-9]{1,5}$/.test(p) || Number(p) > 65535) throw bad('bad port in PROXY line');
    return Number(p);
  };
  const header: ProxyHeader = { family, source, sourcePort: port(sp), destPort: port(dp) };
  if (family === 'TCP6') {
    const id = low32(source);
    if (id === undefined) throw bad('bad IPv6 source in PROXY line');
    header.circuitId = id;
  }
  return { header, length: end + 2 };
}

/** The scope a connection's counters are kept under: the circuit when known, else the source. */
export function proxyScope(h: ProxyHeader): string | undefined {
  if (h.circuitId !== undefined) return `circuit:${h.circuitId}`;
  return h.source !== undefined ? `source:${h.source}` : undefined;
}
