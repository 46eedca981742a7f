// API keys: generation (≥256 bits, shown once), hashing for storage, and constant-time verification.

import { createHash, timingSafeEqual } from "node:crypto";
import type { ApiKey, ApiKeyRole, Store } from "../store/types.ts";

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

export type ApiKeyFailure = "missing" | "unknown" | "disabled" | "expired" | "role";

export type ApiKeyCheck = { ok: true; key: ApiKey } | { ok: false; reason: ApiKeyFailure; key?: ApiKey };

/** Longest key accepted before hashing (a real key is 47 characters); longer input is "unknown". */
const MAX_PRESENTED = 256;

/**
 * Verifies a presented key: hashed, looked up by hash, compared in constant time, then checked for
 * disabled, expiry (`expiresAt <= now` is expired) and role. Never throws for bad input; a store
 * failure propagates (StoreError).
 */
export async function verifyApiKey(
  store: Store,
  presented: string | undefined | null,
  { now, roles }: { now: number; roles: readonly ApiKeyRole[] },
): Promise<ApiKeyCheck> {
  if (!presented) return { ok: false, reason: "missing" };
  if (presented.length > MAX_PRESENTED) return { ok: false, reason: "unknown" };
  const hash = hashApiKey(presented);
  const key = await store.apiKeys.findByHash(hash);
  // The lookup is by index; the comparison is repeated in constant time so that no code path ever
  // decides on a key with a short-circuiting compare.
  if (!key || !digestsEqual(key.hash, hash)) return { ok: false, reason: "unknown" };
  if (key.disabled) return { ok: false, reason: "disabled", key };
  if (key.expiresAt !== null && key.expiresAt <= now) return { ok: false, reason: "expired", key };
  if (!roles.includes(key.role)) return { ok: false, reason: "role", key };
  return { ok: true, key };
}

/** Admin roles from least to most privileged; "magiclink" keys never reach the admin API. */
export const ADMIN_ROLES = ["operator", "admin", "root"] as const satisfies readonly ApiKeyRole[];

/** Roles at or above `min` ("admin" → admin, root). */
export function rolesAtLeast(min: (typeof ADMIN_ROLES)[number]): ApiKeyRole[] {
  return ADMIN_ROLES.slice(ADMIN_ROLES.indexOf(min));
}
