// A small, independent RADIUS client-side wire implementation (RFC 2865, RFC 3579) and RFC 6238 TOTP,
// used by the load generator and the integration tests as an oracle that shares no code with src/.
//
//   0                   1                   2                   3
//   0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//  |     Code      |  Identifier   |            Length             |
//  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//  |                         Authenticator (16 octets)             |
//  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//  |  Attributes: Type (1) | Length (1, >= 2) | Value ...
//  +-+-+-+-+-+-+-+-+-+-+-+-+-

import { createHash, createHmac, randomBytes, timingSafeEqual } from "node:crypto";

/** RADIUS packet codes (RFC 2865 §3, RFC 5997). */
export const Code = {
  AccessRequest: 1,
  AccessAccept: 2,
  AccessReject: 3,
  AccountingRequest: 4,
  AccountingResponse: 5,
  AccessChallenge: 11,
  StatusServer: 12,
} as const;

/** Attribute types used by the tests and the load generator (RFC 2865 §5, RFC 3579 §3.1-3.2). */
export const Attr = {
  UserName: 1,
  UserPassword: 2,
  CHAPPassword: 3,
  NASIPAddress: 4,
  ReplyMessage: 18,
  State: 24,
  ProxyState: 33,
  NASIdentifier: 32,
  CHAPChallenge: 60,
  EAPMessage: 79,
  MessageAuthenticator: 80,
} as const;

/** One attribute as it appears on the wire. */
export type RawAttribute = readonly [type: number, value: Uint8Array];

/** A decoded reply plus the results of checking it against its request. */
export interface CheckedReply {
  code: number;
  identifier: number;
  attributes: RawAttribute[];
  /** RFC 2865 §3: MD5(Code+ID+Length+RequestAuth+Attributes+Secret) matches. */
  responseAuthenticatorValid: boolean;
  /** RFC 3579 §3.2: a Message-Authenticator is present and its HMAC-MD5 verifies. */
  messageAuthenticatorValid: boolean;
  /** The Message-Authenticator is the first attribute (Blast-RADIUS hardening). */
  messageAuthenticatorFirst: boolean;
}

/** Options for {@link buildAccessRequest}. */
export interface RequestOptions {
  code?: number;
  identifier: number;
  secret: string | Uint8Array;
  /** Attributes in wire order; User-Password given here as plain text is hidden per RFC 2865 §5.2. */
  attributes: RawAttribute[];
  /** Where to put a Message-Authenticator: "first" (default), "last", or "none". */
  messageAuthenticator?: "first" | "last" | "none";
  /** Overrides the random Request Authenticator (16 octets). */
  authenticator?: Uint8Array;
  /** Corrupts the Message-Authenticator after computing it (for negative tests). */
  corruptMessageAuthenticator?: boolean;
}

const enc = new TextEncoder();

/** UTF-8 bytes of a string attribute value. */
export function text(value: string): Uint8Array {
  return enc.encode(value);
}

function secretBytes(secret: string | Uint8Array): Uint8Array {
  return typeof secret === "string" ? enc.encode(secret) : secret;
}

/**
 * Hides a User-Password (RFC 2865 §5.2): pad to a multiple of 16 with NULs, then XOR each block
 * with MD5(secret + previous block), the first with MD5(secret + Request Authenticator).
 * Throws RangeError when the password is longer than 128 octets.
 */
export function hidePassword(password: Uint8Array, secret: string | Uint8Array, authenticator: Uint8Array): Uint8Array {
  if (password.length > 128) throw new RangeError("User-Password longer than 128 octets");
  const s = secretBytes(secret);
  const len = Math.max(16, Math.ceil(password.length / 16) * 16);
  const out = new Uint8Array(len);
  out.set(password);
  let prev: Uint8Array = authenticator;
  for (let off = 0; off < len; off += 16) {
    const b = createHash("md5").update(s).update(prev).digest();
    for (let i = 0; i < 16; i++) out[off + i] = out[off + i]! ^ b[i]!;
    prev = out.subarray(off, off + 16);
  }
  return out;
}

/**
 * Encodes an Access-Request (or Status-Server) with a random Request Authenticator and, unless
 * told otherwise, a Message-Authenticator as the first attribute (RFC 3579 §3.2: HMAC-MD5 over the
 * whole packet with the MA value zeroed). Throws RangeError when the packet exceeds 4096 octets.
 */
export function buildAccessRequest(opts: RequestOptions): Uint8Array {
  const code = opts.code ?? Code.AccessRequest;
  const authenticator = opts.authenticator ?? randomBytes(16);
  const where = opts.messageAuthenticator ?? "first";
  const attrs: RawAttribute[] = opts.attributes.map(([t, v]) =>
    t === Attr.UserPassword ? [t, hidePassword(v, opts.secret, authenticator)] : [t, v],
  );
  const ma: RawAttribute = [Attr.MessageAuthenticator, new Uint8Array(16)];
  if (where === "first") attrs.unshift(ma);
  else if (where === "last") attrs.push(ma);
  const pkt = encodeRaw(code, opts.identifier, authenticator, attrs);
  if (where !== "none") {
    const off = findAttributeOffset(pkt, Attr.MessageAuthenticator);
    const mac = createHmac("md5", secretBytes(opts.secret)).update(pkt).digest();
    if (opts.corruptMessageAuthenticator) mac[0] = mac[0]! ^ 0xff;
    pkt.set(mac, off + 2);
  }
  return pkt;
}

/** Encodes a packet exactly as given (no hiding, no authenticator computation). Throws RangeError past 4096 octets. */
export function encodeRaw(code: number, identifier: number, authenticator: Uint8Array, attrs: readonly RawAttribute[]): Uint8Array {
  let len = 20;
  for (const [, v] of attrs) {
    if (v.length > 253) throw new RangeError("attribute value longer than 253 octets");
    len += 2 + v.length;
  }
  if (len > 4096) throw new RangeError("packet longer than 4096 octets");
  const pkt = new Uint8Array(len);
  pkt[0] = code;
  pkt[1] = identifier & 0xff;
  pkt[2] = len >> 8;
  pkt[3] = len & 0xff;
  pkt.set(authenticator.subarray(0, 16), 4);
  let off = 20;
  for (const [t, v] of attrs) {
    pkt[off] = t;
    pkt[off + 1] = v.length + 2;
    pkt.set(v, off + 2);
    off += 2 + v.length;
  }
  return pkt;
}

/** Offset of the first attribute of `type`, or -1. Stops at the Length field or at a malformed attribute. */
export function findAttributeOffset(pkt: Uint8Array, type: number): number {
  const end = Math.min(pkt.length, ((pkt[2] ?? 0) << 8) | (pkt[3] ?? 0));
  let off = 20;
  while (off + 2 <= end) {
    const l = pkt[off + 1]!;
    if (l < 2 || off + l > end) return -1;
    if (pkt[off] === type) return off;
    off += l;
  }
  return -1;
}

/** Splits the attribute area of a packet (up to its Length field). Returns null when malformed. */
export function parseAttributes(pkt: Uint8Array): RawAttribute[] | null {
  if (pkt.length < 20) return null;
  const end = (pkt[2]! << 8) | pkt[3]!;
  if (end < 20 || end > pkt.length) return null;
  const out: RawAttribute[] = [];
  let off = 20;
  while (off < end) {
    if (off + 2 > end) return null;
    const l = pkt[off + 1]!;
    if (l < 2 || off + l > end) return null;
    out.push([pkt[off]!, pkt.slice(off + 2, off + l)]);
    off += l;
  }
  return out;
}

/**
 * Checks a reply against the request that caused it: Response Authenticator (RFC 2865 §3) and
 * Message-Authenticator (RFC 3579 §3.2, computed with the Request Authenticator in place).
 * Returns null when the reply is malformed; never throws on untrusted bytes.
 */
export function checkReply(reply: Uint8Array, request: Uint8Array, secret: string | Uint8Array): CheckedReply | null {
  const attributes = parseAttributes(reply);
  if (!attributes) return null;
  const s = secretBytes(secret);
  const len = (reply[2]! << 8) | reply[3]!;
  const body = reply.subarray(0, len);
  const reqAuth = request.subarray(4, 20);

  const h = createHash("md5");
  h.update(body.subarray(0, 4));
  h.update(reqAuth);
  h.update(body.subarray(20));
  h.update(s);
  const responseAuthenticatorValid = timingSafeEqual(h.digest(), body.subarray(4, 20));

  let messageAuthenticatorValid = false;
  const off = findAttributeOffset(body, Attr.MessageAuthenticator);
  if (off >= 0 && body[off + 1] === 18) {
    const copy = Uint8Array.from(body);
    copy.set(reqAuth, 4);
    copy.fill(0, off + 2, off + 18);
    const mac = createHmac("md5", s).update(copy).digest();
    messageAuthenticatorValid = timingSafeEqual(mac, body.subarray(off + 2, off + 18));
  }
  return {
    code: body[0]!,
    identifier: body[1]!,
    attributes,
    responseAuthenticatorValid,
    messageAuthenticatorValid,
    messageAuthenticatorFirst: attributes[0]?.[0] === Attr.MessageAuthenticator,
  };
}

/** All values of one attribute type, in order. */
export function values(attrs: readonly RawAttribute[], type: number): Uint8Array[] {
  return attrs.filter(([t]) => t === type).map(([, v]) => v);
}

const B32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/** RFC 4648 §6 base32 without padding. */
export function encodeBase32(bytes: Uint8Array): string {
  let out = "";
  let bits = 0;
  let acc = 0;
  for (const b of bytes) {
    acc = (acc << 8) | b;
    bits += 8;
    while (bits >= 5) {
      out += B32[(acc >>> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  if (bits > 0) out += B32[(acc << (5 - bits)) & 31];
  return out;
}

/** RFC 4648 §6 base32 (case-insensitive, padding and spaces ignored). Throws TypeError on other characters. */
export function decodeBase32(s: string): Uint8Array {
  const clean = s.toUpperCase().replace(/[\s=]/g, "");
  const out = new Uint8Array(Math.floor((clean.length * 5) / 8));
  let bits = 0;
  let acc = 0;
  let i = 0;
  for (const ch of clean) {
    const v = B32.indexOf(ch);
    if (v < 0) throw new TypeError("invalid base32 character");
    acc = ((acc << 5) | v) & 0xffff;
    bits += 5;
    if (bits >= 8) {
      out[i++] = (acc >>> (bits - 8)) & 0xff;
      bits -= 8;
    }
  }
  return out;
}

/** TOTP parameters (RFC 6238 §4). */
export interface TOTPParams {
  algorithm?: "SHA1" | "SHA256" | "SHA512";
  digits?: number;
  period?: number;
}

/** RFC 6238 TOTP code for the step containing `now` (ms), plus `stepOffset` steps. */
export function totp(key: Uint8Array, { now, stepOffset = 0, algorithm = "SHA1", digits = 6, period = 30 }: TOTPParams & { now: number; stepOffset?: number }): string {
  const step = Math.floor(now / 1000 / period) + stepOffset;
  return hotp(key, step, { algorithm, digits });
}

/** RFC 4226 §5.3 HOTP with dynamic truncation. */
export function hotp(key: Uint8Array, counter: number, { algorithm = "SHA1", digits = 6 }: Omit<TOTPParams, "period"> = {}): string {
  const msg = new Uint8Array(8);
  new DataView(msg.buffer).setBigUint64(0, BigInt(counter));
  const mac = createHmac(algorithm.toLowerCase(), key).update(msg).digest();
  const o = mac[mac.length - 1]! & 0x0f;
  const bin = ((mac[o]! & 0x7f) << 24) | (mac[o + 1]! << 16) | (mac[o + 2]! << 8) | mac[o + 3]!;
  return String(bin % 10 ** digits).padStart(digits, "0");
}
