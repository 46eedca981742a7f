// Attribute helpers: lookup in a parsed packet and builders for the common value types (RFC 2865 §5).

import { Attr, MAX_ATTRIBUTE_VALUE_LENGTH } from "./constants.ts";
import type { RADIUSPacket, RawAttribute } from "./packet.ts";

const utf8 = new TextEncoder();

/** The value of the first attribute of `type`, or undefined. */
export function getAttribute(p: RADIUSPacket, type: number): Uint8Array | undefined {
  for (const a of p.attributes) if (a.type === type) return a.value;
  return undefined;
}

/** The values of every attribute of `type`, in packet order (Proxy-State must be echoed in order, RFC 2865 §5.33). */
export function getAttributes(p: RADIUSPacket, type: number): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (const a of p.attributes) if (a.type === type) out.push(a.value);
  return out;
}

function checkType(type: number): void {
  if (!Number.isInteger(type) || type < 1 || type > 255) throw new TypeError("attribute type must be 1..255");
}

/**
 * Builds an attribute from raw octets.
 * @throws TypeError for a type outside 1..255 or a value longer than 253 octets.
 */
export function octetsAttribute(type: number, value: Uint8Array): RawAttribute {
  checkType(type);
  if (value.length > MAX_ATTRIBUTE_VALUE_LENGTH) {
    throw new TypeError(`attribute ${type} value longer than ${MAX_ATTRIBUTE_VALUE_LENGTH} octets`);
  }
  return { type, value };
}

/**
 * A "text" attribute (RFC 2865 §5: UTF-8, 1-253 octets), e.g. Reply-Message.
 * @throws TypeError when the UTF-8 form is longer than 253 octets.
 */
export function textAttribute(type: number, s: string): RawAttribute {
  return octetsAttribute(type, utf8.encode(s));
}

/**
 * An "integer" attribute (RFC 2865 §5: 32-bit unsigned, network order), e.g. Session-Timeout.
 * @throws TypeError unless `n` is an integer in 0..2^32-1.
 */
export function integerAttribute(type: number, n: number): RawAttribute {
  checkType(type);
  if (!Number.isInteger(n) || n < 0 || n > 0xffffffff) throw new TypeError(`attribute ${type} integer out of range`);
  const value = new Uint8Array(4);
  value[0] = n >>> 24;
  value[1] = (n >>> 16) & 0xff;
  value[2] = (n >>> 8) & 0xff;
  value[3] = n & 0xff;
  return { type, value };
}

/**
 * An "address" attribute (RFC 2865 §5: IPv4, 4 octets) from dotted-quad text.
 * @throws TypeError for anything but a dotted-quad IPv4 address.
 */
export function ipv4Attribute(type: number, address: string): RawAttribute {
  checkType(type);
  return { type, value: parseIPv4(address) };
}

/** @throws TypeError for anything but a dotted-quad IPv4 address. */
export function parseIPv4(address: string): Uint8Array {
  const parts = address.split(".");
  if (parts.length !== 4) throw new TypeError("not an IPv4 address");
  const out = new Uint8Array(4);
  for (let i = 0; i < 4; i++) {
    const p = parts[i]!;
    if (!/^\d{1,3}$/.test(p) || Number(p) > 255) throw new TypeError("not an IPv4 address");
    out[i] = Number(p);
  }
  return out;
}

/**
 * A Vendor-Specific attribute (RFC 2865 §5.26) holding one vendor sub-attribute in the
 * recommended format: Vendor-Id (4) | Vendor-Type (1) | Vendor-Length (1) | Value.
 * @throws TypeError for a vendor id outside 1..2^32-1, a vendor type outside 0..255, or a value
 *   longer than 247 octets (253 - 4 - 2).
 */
export function vendorSpecificAttribute(vendorId: number, vendorType: number, value: Uint8Array): RawAttribute {
  if (!Number.isInteger(vendorId) || vendorId < 1 || vendorId > 0xffffffff) throw new TypeError("vendor id out of range");
  if (!Number.isInteger(vendorType) || vendorType < 0 || vendorType > 255) throw new TypeError("vendor type out of range");
  if (value.length > MAX_ATTRIBUTE_VALUE_LENGTH - 6) throw new TypeError("vendor attribute value longer than 247 octets");
  const out = new Uint8Array(6 + value.length);
  out[0] = vendorId >>> 24;
  out[1] = (vendorId >>> 16) & 0xff;
  out[2] = (vendorId >>> 8) & 0xff;
  out[3] = vendorId & 0xff;
  out[4] = vendorType;
  out[5] = 2 + value.length;
  out.set(value, 6);
  return { type: Attr.VendorSpecific, value: out };
}
