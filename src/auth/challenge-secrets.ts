// Passwords held between the legs of the password-change flow, sealed under a key only the NAS holds.
//
// The old and new password must survive from one Access-Challenge to the next (password-change.ts),
// but the store must not be able to reveal them. They are sealed with AES-256-GCM under a key
// derived by HKDF-SHA256 (RFC 5869) from the raw State value. The store only ever sees
// SHA-256(State) (challenge.ts stateId), so a copy of the database alone cannot decrypt them; the
// challenge row is single-use, short-lived and consumed before it is opened.

import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from "node:crypto";

/** The passwords of one change flow: the proven old one, and the new one once typed. */
export interface ChangeSecrets {
  old: string;
  new?: string;
}

const SALT = Buffer.from("portcullis challenge secrets", "utf8");
const INFO = Buffer.from("aes-256-gcm v1", "utf8");
const IV_BYTES = 12;
const TAG_BYTES = 16;

function keyFor(state: Uint8Array): Buffer {
  return Buffer.from(hkdfSync("sha256", state, SALT, INFO, 32));
}

/**
 * Seals `secrets` for the challenge whose State is `state`. `binding` (client and user) is the
 * associated data, so a row copied to another client or user does not open.
 * Returns base64url(iv | ciphertext | tag). `random` is a parameter so that tests can fix it.
 */
export function sealChangeSecrets(
  state: Uint8Array,
  binding: string,
  secrets: ChangeSecrets,
  random: (n: number) => Uint8Array = (n) => randomBytes(n),
): string {
  const iv = random(IV_BYTES);
  const cipher = createCipheriv("aes-256-gcm", keyFor(state), iv);
  cipher.setAAD(Buffer.from(binding, "utf8"));
  const body = Buffer.concat([cipher.update(JSON.stringify(secrets), "utf8"), cipher.final()]);
  return Buffer.concat([iv, body, cipher.getAuthTag()]).toString("base64url");
}

/**
 * Opens what sealChangeSecrets sealed. Returns undefined (never throws, never says why) for
 * another State, another binding, or altered bytes.
 */
export function openChangeSecrets(state: Uint8Array, binding: string, sealed: string): ChangeSecrets | undefined {
  try {
    const raw = Buffer.from(sealed, "base64url");
    if (raw.length < IV_BYTES + TAG_BYTES + 2) return undefined;
    const decipher = createDecipheriv("aes-256-gcm", keyFor(state), raw.subarray(0, IV_BYTES));
    decipher.setAAD(Buffer.from(binding, "utf8"));
    decipher.setAuthTag(raw.subarray(raw.length - TAG_BYTES));
    const text = Buffer.concat([decipher.update(raw.subarray(IV_BYTES, raw.length - TAG_BYTES)), decipher.final()]).toString("utf8");
    const value = JSON.parse(text) as ChangeSecrets;
    if (typeof value.old !== "string" || (value.new !== undefined && typeof value.new !== "string")) return undefined;
    return value;
  } catch {
    return undefined;
  }
}
