// The appliance's VAPID key pair (RFC 8292): made once, kept sealed in the store as the server secret
// "vapid" (its 32-byte private scalar), so that it survives restarts and key rotation and every
// process on the store signs with the same key. Push services bind a subscription to the public key
// the browser was given (applicationServerKey): a new key would orphan every subscription.

import { createECDH, generateKeyPairSync } from "node:crypto";
import type { ServerSecretRepo } from "../store/types.ts";

/** The name of the VAPID private key in the store's server secrets. */
export const VAPID_SECRET_NAME = "vapid";

export interface VapidKeys {
  /** base64url of the uncompressed P-256 public point (65 bytes): the app's applicationServerKey and the `k` of RFC 8292 §3.2. */
  publicKey: string;
  /** base64url of the 32-byte private scalar. Never logged, never sent. */
  privateKey: string;
}

/** A fresh P-256 private scalar, 32 bytes (JWK `d` is always full length, RFC 7518 §6.2.2.1). */
export function generateVapidPrivateKey(): Uint8Array {
  const { privateKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
  return new Uint8Array(Buffer.from(privateKey.export({ format: "jwk" }).d!, "base64url"));
}

/** The key pair of a private scalar. Throws when `d` is not a valid P-256 private key. */
export function vapidKeysFrom(d: Uint8Array): VapidKeys {
  const ecdh = createECDH("prime256v1");
  ecdh.setPrivateKey(d);
  return { publicKey: ecdh.getPublicKey().toString("base64url"), privateKey: Buffer.from(d).toString("base64url") };
}

/**
 * The store's VAPID key pair, created on first use (one winner among concurrent processes). Throws
 * like ServerSecretRepo.get.
 */
export async function loadVapidKeys(secrets: ServerSecretRepo): Promise<VapidKeys> {
  const d = await secrets.get(VAPID_SECRET_NAME, generateVapidPrivateKey, { minBytes: 32 });
  return vapidKeysFrom(d);
}

/**
 * The VAPID subject to send: `[push] subject`, else the origin of `[http] public_url` when it is an
 * https: URL other than localhost (a contact URL of the application server, RFC 8292 §2.1), else ""
 * (no push can be sent; serve logs `push.subject_missing`).
 */
export function effectivePushSubject(subject: string, publicUrl: string): string {
  if (subject) return subject;
  try {
    const url = new URL(publicUrl);
    return url.protocol === "https:" && url.hostname !== "localhost" ? url.origin : "";
  } catch {
    return "";
  }
}
