// CIDR parsing and matching (IPv4, IPv6, IPv4-mapped IPv6 sources): the RADIUS client table and config validation share it.

import { isIPv4, isIPv6 } from "node:net";

export interface Network {
  family: 4 | 6;
  /** Network address as a 128-bit integer (IPv4 in the low 32 bits). */
  base: bigint;
  prefix: number;
}

/** A CIDR as written: its address text, family, value and prefix (the address's own length when absent). */
function parseWritten(text: string): { addr: string; family: 4 | 6; value: bigint; prefix: number } | undefined {
  const [addr, len, extra] = text.trim().split("/");
  if (extra !== undefined || !addr) return undefined;
  const family = isIPv4(addr) ? 4 : isIPv6(addr) ? 6 : 0;
  if (family === 0) return undefined;
  const bits = family === 4 ? 32 : 128;
  const prefix = len === undefined ? bits : /^\d{1,3}$/.test(len) ? Number(len) : NaN;
  if (!(prefix >= 0 && prefix <= bits)) return undefined;
  return { addr, family, value: family === 4 ? ipv4ToBigInt(addr) : ipv6ToBigInt(addr), prefix };
}

/**
 * Parses "192.0.2.0/24", "2001:db8::/32", or a bare address (a /32 or /128). Returns undefined when
 * invalid. Host bits are cleared ("192.0.2.7/24" is 192.0.2.0/24). An IPv4-mapped IPv6 network of
 * at least /96 ("::ffff:192.0.2.0/120") is the IPv4 network it maps (192.0.2.0/24), because
 * parseAddress reads an IPv4-mapped source as IPv4: written the other way it would match nothing.
 */
export function parseCIDR(text: string): Network | undefined {
  const written = parseWritten(text);
  if (!written) return undefined;
  const { family, value, prefix } = written;
  const bits = family === 4 ? 32 : 128;
  const base = value & mask(bits, prefix);
  if (family === 6 && prefix >= 96 && base >> 32n === 0xffffn) return { family: 4, base: base & 0xffffffffn, prefix: prefix - 96 };
  return { family, base, prefix };
}

/**
 * The canonical text of a CIDR as stored for a RADIUS client: the address as written plus its
 * prefix ("192.0.2.7" → "192.0.2.7/32"), or undefined when parseCIDR refuses it. formatNetwork
 * gives the network it stands for.
 */
export function canonicalCIDR(text: string): string | undefined {
  const written = parseWritten(text);
  if (!written) return undefined;
  return `${written.addr}/${written.prefix}`;
}

/**
 * A network's one text: host bits cleared, IPv4 dotted, IPv6 as RFC 5952 §4 writes it (lower case,
 * no leading zeros, the longest run of two or more zero groups as "::", the first when tied).
 * Two CIDRs stand for the same network exactly when their texts are equal.
 */
export function formatNetwork(net: Network): string {
  if (net.family === 4) {
    const b = net.base;
    return `${(b >> 24n) & 0xffn}.${(b >> 16n) & 0xffn}.${(b >> 8n) & 0xffn}.${b & 0xffn}/${net.prefix}`;
  }
  const groups = Array.from({ length: 8 }, (_, i) => Number((net.base >> BigInt(112 - 16 * i)) & 0xffffn));
  let bestAt = -1;
  let bestLength = 1; // a single zero group is not compressed (RFC 5952 §4.2.2)
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLength) [bestAt, bestLength] = [i, j - i];
    i = j;
  }
  const hex = (g: number[]) => g.map((x) => x.toString(16)).join(":");
  const text = bestAt < 0 ? hex(groups) : `${hex(groups.slice(0, bestAt))}::${hex(groups.slice(bestAt + bestLength))}`;
  return `${text}/${net.prefix}`;
}

/** Whether every address of `inner` is in `outer` (true for the same network). */
export function covers(outer: Network, inner: Network): boolean {
  if (outer.family !== inner.family || outer.prefix > inner.prefix) return false;
  return (inner.base & mask(outer.family === 4 ? 32 : 128, outer.prefix)) === outer.base;
}

/** How many addresses a network holds. */
export function networkSize(net: Network): bigint {
  return 1n << BigInt((net.family === 4 ? 32 : 128) - net.prefix);
}

/** Parses a source address into family and value; IPv4-mapped IPv6 ("::ffff:192.0.2.1") counts as IPv4. */
export function parseAddress(addr: string): { family: 4 | 6; value: bigint } | undefined {
  if (isIPv4(addr)) return { family: 4, value: ipv4ToBigInt(addr) };
  if (!isIPv6(addr)) return undefined;
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(addr);
  if (mapped) return { family: 4, value: ipv4ToBigInt(mapped[1]!) };
  return { family: 6, value: ipv6ToBigInt(addr) };
}

export function contains(net: Network, addr: { family: 4 | 6; value: bigint }): boolean {
  if (net.family !== addr.family) return false;
  return (addr.value & mask(net.family === 4 ? 32 : 128, net.prefix)) === net.base;
}

function mask(bits: number, prefix: number): bigint {
  if (prefix === 0) return 0n;
  const all = (1n << BigInt(bits)) - 1n;
  return all ^ ((1n << BigInt(bits - prefix)) - 1n);
}

function ipv4ToBigInt(addr: string): bigint {
  return addr.split(".").reduce((acc, octet) => (acc << 8n) | BigInt(Number(octet)), 0n);
}

function ipv6ToBigInt(addr: string): bigint {
  let text = addr.split("%")[0]!; // drop a zone index
  // an embedded IPv4 tail ("::ffff:1.2.3.4") becomes two hextets
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (v4) {
    const n = ipv4ToBigInt(v4[1]!);
    text = text.slice(0, -v4[1]!.length) + ((n >> 16n) & 0xffffn).toString(16) + ":" + (n & 0xffffn).toString(16);
  }
  const [head, tail] = text.includes("::") ? text.split("::") : [text, undefined];
  const h = head ? head.split(":") : [];
  const t = tail ? tail.split(":") : [];
  const groups = tail === undefined ? h : [...h, ...Array(8 - h.length - t.length).fill("0"), ...t];
  return groups.reduce((acc, g) => (acc << 16n) | BigInt(parseInt(g || "0", 16)), 0n);
}
