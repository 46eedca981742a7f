// Random OTP seed generation (RFC 4226 §4 R6-R7: at least 128 bits, 160 recommended).

import { randomBytes } from "node:crypto";
import { OTPError } from "./errors.ts";
import { MAX_SECRET_BYTES, RECOMMENDED_MIN_SECRET_BYTES } from "./hotp.ts";

/**
 * Returns a new random seed of `bytes` bytes (default 20 = 160 bits, RFC 4226 §4 R6).
 * `random` replaces the CSPRNG in tests. Throws OTPError("bad_params") when `bytes` is outside
 * 16-64 or the random source returns the wrong length.
 */
export function generateSecret({
  bytes = 20,
  random = (n: number) => new Uint8Array(randomBytes(n)),
}: { bytes?: number; random?: (n: number) => Uint8Array } = {}): Uint8Array {
  if (!Number.isSafeInteger(bytes) || bytes < RECOMMENDED_MIN_SECRET_BYTES || bytes > MAX_SECRET_BYTES) {
    throw new OTPError("bad_params", `bytes must be ${RECOMMENDED_MIN_SECRET_BYTES}-${MAX_SECRET_BYTES}`);
  }
  const out = random(bytes);
  if (!(out instanceof Uint8Array) || out.length !== bytes) throw new OTPError("bad_params", "random source returned the wrong length");
  return out;
}
