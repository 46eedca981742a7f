// RFC 4648 §6 base32 for OTP seeds: upper-case, unpadded output; tolerant, strict-alphabet input.
// The bit conversion is @scure/base's (otplib's own base32 plugin uses it too); this module keeps
// our rules around it for secrets that people type or paste.

import { base32nopad } from "@scure/base";
import { OTPError } from "./errors.ts";

const ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
const BASE32_CHARACTERS = /^[A-Za-z2-7]*$/;

/**
 * Encodes bytes as RFC 4648 base32, upper case, without "=" padding (the Key Uri Format asks
 * for padding to be omitted).
 */
export function encodeBase32(b: Uint8Array): string {
  return base32nopad.encode(b);
}

/**
 * Decodes RFC 4648 base32. Case-insensitive; spaces and trailing "=" padding are tolerated, and so
 * are set bits after the last whole octet (they are ignored). Throws OTPError("bad_secret") on any
 * other character, on padding in the middle, or on a length no encoder produces (1, 3 or 6
 * characters in the last group). The message never echoes the input.
 */
export function decodeBase32(s: string): Uint8Array {
  const unpadded = s.replace(/ /g, "").replace(/=+$/, "");
  const rest = unpadded.length % 8;
  if (rest === 1 || rest === 3 || rest === 6) throw new OTPError("bad_secret", "base32 secret has an invalid length");
  // ASCII letters only: toUpperCase below must not turn "ı" into "I" or "ſ" into "S".
  if (!BASE32_CHARACTERS.test(unpadded)) throw new OTPError("bad_secret", "base32 secret contains an invalid character");
  try {
    return base32nopad.decode(withoutTrailingBits(unpadded.toUpperCase()));
  } catch {
    // Not reached for input that passed the checks above; the library's message could quote the input.
    throw new OTPError("bad_secret", "base32 secret is invalid");
  }
}

/**
 * Clears the bits of the last character that lie beyond the last whole octet (2, 4, 1 or 3 bits
 * when the last group has 2, 4, 5 or 7 characters). RFC 4648 §3.5 lets a decoder reject such
 * input, and @scure/base does; seeds typed or pasted by people have always been accepted here, so
 * those bits are dropped instead, as they carry no octet.
 */
function withoutTrailingBits(upper: string): string {
  const spare = (upper.length * 5) % 8;
  if (spare === 0) return upper;
  const last = ALPHABET.indexOf(upper[upper.length - 1]!);
  const cleared = last & ~((1 << spare) - 1);
  return cleared === last ? upper : upper.slice(0, -1) + ALPHABET[cleared];
}
