// API key material: generation (256 bits, shown once), the SHA-256 the store keeps, and a
// constant-time comparison of digests. Used by the admin operations (making keys) and by the HTTP
// adapter (verifying presented keys).

import { createHash, timingSafeEqual } from "node:crypto";

/** Every key starts with this, so that a leaked key is recognisable (secret scanners). */
export const API_KEY_PREFIX = "pcl_";
/** Random bytes per key: 256 bits. */
export const API_KEY_BYTES = 32;
/** Characters of the key kept for display (the "pcl_" marker plus 6 base64url characters, 36 bits). */
const DISPLAY_CHARS = API_KEY_PREFIX.length + 6;

/** A new key: `key` is shown once and never stored; `hash` and `prefix` go to the store. */
export interface GeneratedApiKey {
  key: string;
  hash: string;
  prefix: string;
}

/** SHA-256 of the key's UTF-8 bytes, lower-case hex. A fast hash fits: the key has 256 random bits. */
export function hashApiKey(key: string): string {
  return createHash("sha256").update(key, "utf8").digest("hex");
}

/** Generates a key from `random` (which must return `n` cryptographically random bytes). */
export function generateApiKey(random: (n: number) => Uint8Array): GeneratedApiKey {
  const bytes = random(API_KEY_BYTES);
  if (bytes.length !== API_KEY_BYTES) throw new TypeError(`random source returned ${bytes.length} bytes, not ${API_KEY_BYTES}`);
  const key = API_KEY_PREFIX + Buffer.from(bytes).toString("base64url");
  return { key, hash: hashApiKey(key), prefix: key.slice(0, DISPLAY_CHARS) };
}

/** Constant-time equality of two hex digests (false for different lengths, without comparing). */
export function digestsEqual(a: string, b: string): boolean {
  const x = Buffer.from(a, "utf8");
  const y = Buffer.from(b, "utf8");
  return x.length === y.length && timingSafeEqual(x, y);
}
