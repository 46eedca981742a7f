// Sealing secrets at rest: AES-256-GCM with a 96-bit random nonce and associated data that binds
// each ciphertext to its table, column, row and key ID (NIST SP 800-38D; RFC 5116 §5.1 AEAD_AES_256_GCM).
//
// Stored form (portable TEXT, base64url without padding):
//
//   v1.<keyId>.<nonce: 12 bytes>.<ciphertext || tag: n + 16 bytes>
//
// The associated data is never stored; it is rebuilt from where the value is read:
//
//   "portcullis:v1:" + table + ":" + column + ":" + rowKey + ":" + keyId
//
// so a ciphertext copied to another row (another client name or token serial), another column or
// relabelled with another key ID fails authentication instead of decrypting.

import { createCipheriv, createDecipheriv, randomBytes } from "node:crypto";
import { StoreError } from "./types.ts";

/** Where a sealed value lives; rowKey is a stable unique column of the row (client name, token serial). */
export interface SealContext {
  table: string;
  column: string;
  rowKey: string;
}

/** One AES-256 key and its short public identifier. */
export interface SealKey {
  id: string;
  key: Uint8Array;
}

const VERSION = "v1";
const NONCE_BYTES = 12;
const TAG_BYTES = 16;
const KEY_ID = /^[0-9a-f]{4,32}$/;

/** The associated data for a value sealed under `keyId` at `ctx`. */
export function associatedData(ctx: SealContext, keyId: string): Uint8Array {
  return Buffer.from(`portcullis:${VERSION}:${ctx.table}:${ctx.column}:${ctx.rowKey}:${keyId}`, "utf8");
}

/**
 * Encrypts `plaintext` under `key` for the location `ctx`. `nonce` is for tests only; by default
 * 12 fresh random bytes. Throws TypeError for a key that is not 32 bytes or a malformed key ID.
 */
export function seal(key: SealKey, plaintext: Uint8Array, ctx: SealContext, { nonce }: { nonce?: Uint8Array } = {}): string {
  if (key.key.length !== 32) throw new TypeError("sealing key must be 32 bytes");
  if (!KEY_ID.test(key.id)) throw new TypeError("sealing key ID must be 4-32 lower-case hex digits");
  const iv = nonce ?? randomBytes(NONCE_BYTES);
  if (iv.length !== NONCE_BYTES) throw new TypeError("nonce must be 12 bytes");
  const cipher = createCipheriv("aes-256-gcm", key.key, iv, { authTagLength: TAG_BYTES });
  cipher.setAAD(associatedData(ctx, key.id));
  const body = Buffer.concat([cipher.update(plaintext), cipher.final(), cipher.getAuthTag()]);
  return `${VERSION}.${key.id}.${Buffer.from(iv).toString("base64url")}.${body.toString("base64url")}`;
}

/** The key ID a sealed value names, or undefined when it is not a v1 sealed value. */
export function sealedKeyId(sealed: string): string | undefined {
  const parts = sealed.split(".");
  return parts.length === 4 && parts[0] === VERSION && KEY_ID.test(parts[1]!) ? parts[1] : undefined;
}

const corrupt = () => new StoreError("corrupt", "a sealed secret could not be opened");

/**
 * Decrypts a value sealed by `seal` at the same `ctx`. `lookup` returns the key for a key ID.
 * Throws StoreError("key_mismatch") when no key has the value's ID, and StoreError("corrupt") for
 * a malformed value or a failed authentication (tampering, a moved ciphertext, or a wrong key).
 */
export function openSealed(lookup: (keyId: string) => Uint8Array | undefined, sealed: string, ctx: SealContext): Uint8Array {
  const parts = sealed.split(".");
  if (parts.length !== 4 || parts[0] !== VERSION || !KEY_ID.test(parts[1]!)) throw corrupt();
  const keyId = parts[1]!;
  const key = lookup(keyId);
  if (!key) throw new StoreError("key_mismatch", `a sealed secret uses key ID ${keyId}, which the keyring does not hold`);
  const iv = Buffer.from(parts[2]!, "base64url");
  const body = Buffer.from(parts[3]!, "base64url");
  if (iv.length !== NONCE_BYTES || body.length < TAG_BYTES) throw corrupt();
  try {
    const decipher = createDecipheriv("aes-256-gcm", key, iv, { authTagLength: TAG_BYTES });
    decipher.setAAD(associatedData(ctx, keyId));
    decipher.setAuthTag(body.subarray(body.length - TAG_BYTES));
    const out = Buffer.concat([decipher.update(body.subarray(0, body.length - TAG_BYTES)), decipher.final()]);
    return new Uint8Array(out.buffer, out.byteOffset, out.length);
  } catch {
    throw corrupt();
  }
}
