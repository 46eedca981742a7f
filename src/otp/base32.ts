// RFC 4648 §6 base32 for OTP seeds: upper-case, unpadded output; tolerant, strict-alphabet input.

import { OTPError } from "./errors.ts";

const ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
const LOOKUP = new Int8Array(128).fill(-1);
for (let i = 0; i < ALPHABET.length; i++) {
  LOOKUP[ALPHABET.charCodeAt(i)] = i;
  LOOKUP[ALPHABET.toLowerCase().charCodeAt(i)] = i;
}

/**
 * Encodes bytes as RFC 4648 base32, upper case, without "=" padding (the Key Uri Format asks
 * for padding to be omitted).
 */
export function encodeBase32(b: Uint8Array): string {
  let out = "";
  let buffer = 0;
  let bits = 0;
  for (const byte of b) {
    buffer = ((buffer << 8) | byte) & 0xffff;
    bits += 8;
    while (bits >= 5) {
      out += ALPHABET[(buffer >>> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  if (bits > 0) out += ALPHABET[(buffer << (5 - bits)) & 31];
  return out;
}

/**
 * Decodes RFC 4648 base32. Case-insensitive; spaces and trailing "=" padding are tolerated.
 * Throws OTPError("bad_secret") on any other character, on padding in the middle, or on a
 * length no encoder produces (1, 3 or 6 characters in the last group). The message never
 * echoes the input.
 */
export function decodeBase32(s: string): Uint8Array {
  const compact = s.replace(/ /g, "");
  const unpadded = compact.replace(/=+$/, "");
  const rest = unpadded.length % 8;
  if (rest === 1 || rest === 3 || rest === 6) throw new OTPError("bad_secret", "base32 secret has an invalid length");
  const out = new Uint8Array(Math.floor((unpadded.length * 5) / 8));
  let buffer = 0;
  let bits = 0;
  let j = 0;
  for (let i = 0; i < unpadded.length; i++) {
    const c = unpadded.charCodeAt(i);
    const v = c < 128 ? LOOKUP[c]! : -1;
    if (v < 0) throw new OTPError("bad_secret", "base32 secret contains an invalid character");
    buffer = ((buffer << 5) | v) & 0xffff;
    bits += 5;
    if (bits >= 8) {
      out[j++] = (buffer >>> (bits - 8)) & 0xff;
      bits -= 8;
    }
  }
  return out;
}
