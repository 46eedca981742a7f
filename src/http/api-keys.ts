// API keys on the wire: constant-time verification of a presented key and the admin roles; the key
// material (generation, hashing) is admin/api-key-material.ts, re-exported here.

import { digestsEqual, hashApiKey } from "../admin/api-key-material.ts";
import type { ApiKey, ApiKeyRole, Store } from "../store/types.ts";

export { API_KEY_BYTES, API_KEY_PREFIX, digestsEqual, generateApiKey, hashApiKey, type GeneratedApiKey } from "../admin/api-key-material.ts";

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
