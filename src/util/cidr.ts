// CIDR parsing and matching (IPv4, IPv6, IPv4-mapped IPv6 sources): the RADIUS client table and config validation share it.

import { isIPv4, isIPv6 } from "node:net";

export interface Network {
  family: 4 | 6;
  /** Network address as a 128-bit integer (IPv4 in the low 32 bits). */
  base: bigint;
  prefix: number;
}

/** Parses "192.0.2.0/24", "2001:db8::/32", or a bare address (a /32 or /128). Returns undefined when invalid. */
export function parseCIDR(text: string): Network | undefined {
  const [addr, len, extra] = text.trim().split("/");
  if (extra !== undefined || !addr) return undefined;
  const family = isIPv4(addr) ? 4 : isIPv6(addr) ? 6 : 0;
  if (family === 0) return undefined;
  const bits = family === 4 ? 32 : 128;
  const prefix = len === undefined ? bits : /^\d{1,3}$/.test(len) ? Number(len) : NaN;
  if (!(prefix >= 0 && prefix <= bits)) return undefined;
  const value = family === 4 ? ipv4ToBigInt(addr) : ipv6ToBigInt(addr);
  return { family, base: value & mask(bits, prefix), prefix };
}

/**
 * The canonical text of a CIDR as stored for a RADIUS client: the address as written plus its
 * prefix ("192.0.2.7" → "192.0.2.7/32"), or undefined when parseCIDR refuses it.
 */
export function canonicalCIDR(text: string): string | undefined {
  const net = parseCIDR(text);
  if (!net) return undefined;
  return `${text.trim().split("/")[0]}/${net.prefix}`;
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
