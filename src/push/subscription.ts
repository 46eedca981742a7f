// A Web Push subscription as a device sends it (the browser's PushSubscription.toJSON() without
// expirationTime): checked strictly before it is stored, so that sending never meets a bad key.

import type { PushSubscription } from "../store/types.ts";
import type { PushHosts } from "./hosts.ts";
import { isUncompressedP256Point } from "../util/p256.ts";

export type SubscriptionRefusal = "malformed" | "not_https" | "host_not_allowed" | "bad_keys";

/** Canonical unpadded base64url of exactly `n` bytes, or undefined. */
function b64url(text: unknown, n: number): Uint8Array | undefined {
  if (typeof text !== "string" || text.length !== Math.ceil((n * 4) / 3) || !/^[A-Za-z0-9_-]+$/.test(text)) return undefined;
  const bytes = Buffer.from(text, "base64url");
  return bytes.length === n && bytes.toString("base64url") === text ? new Uint8Array(bytes) : undefined;
}

/**
 * Checks `{endpoint, keys: {p256dh, auth}}` (an `expirationTime` member is tolerated and ignored):
 * the endpoint through `hosts`, `p256dh` an uncompressed P-256 point on the curve (65 bytes, RFC 8291
 * §3.2), `auth` 16 bytes. Returns the subscription with the normalised endpoint, or the reason it is
 * refused (never echoing the input). Never throws.
 */
export async function parsePushSubscription(input: unknown, hosts: PushHosts): Promise<{ ok: true; subscription: PushSubscription } | { ok: false; reason: SubscriptionRefusal }> {
  if (input === null || typeof input !== "object" || Array.isArray(input)) return { ok: false, reason: "malformed" };
  const sub = input as Record<string, unknown>;
  for (const k of Object.keys(sub)) if (k !== "endpoint" && k !== "keys" && k !== "expirationTime") return { ok: false, reason: "malformed" };
  if (typeof sub.endpoint !== "string") return { ok: false, reason: "malformed" };
  const checked = hosts.check(sub.endpoint);
  if (!checked.ok) return checked;
  const keys = sub.keys as Record<string, unknown> | null | undefined;
  if (keys === null || typeof keys !== "object" || Array.isArray(keys)) return { ok: false, reason: "bad_keys" };
  for (const k of Object.keys(keys)) if (k !== "p256dh" && k !== "auth") return { ok: false, reason: "bad_keys" };
  const p256dh = b64url(keys.p256dh, 65);
  const auth = b64url(keys.auth, 16);
  // on the curve by its equation: not every runtime's WebCrypto refuses a point off it
  if (!p256dh || !isUncompressedP256Point(p256dh) || !auth) return { ok: false, reason: "bad_keys" };
  try {
    await crypto.subtle.importKey("raw", p256dh as Uint8Array<ArrayBuffer>, { name: "ECDH", namedCurve: "P-256" }, false, []);
  } catch {
    return { ok: false, reason: "bad_keys" };
  }
  return { ok: true, subscription: { endpoint: checked.url.href, p256dh: keys.p256dh as string, auth: keys.auth as string } };
}
