// The approver app's device keys and signed requests (DESIGN "Approver app"; docs/app.md):
// strict P-256 JWK checks, the signed text, ECDSA verification, and the identifiers the protocol uses.
//
// A signed request carries
//
//   Portcullis-Device: ID
//   Portcullis-Time: UNIX-SECONDS
//   Portcullis-Signature: base64url(r ‖ s)            (IEEE P1363, 64 bytes: WebCrypto's own form)
//
// over the UTF-8 text
//
//   METHOD "\n" PATH-WITH-QUERY "\n" TIME "\n" base64url(SHA-256(BODY))
//
// ECDSA signatures are malleable: when (r, s) verifies, so does (r, n − s). A replay record keyed on
// the whole signature would let the second form through, so a signature is recorded by its r alone:
// r = x(kG) for the signer's random k, and two honest signatures never share it.

import { createHash } from "node:crypto";
import type { DevicePublicKey } from "../store/types.ts";
import { isP256Point } from "../util/p256.ts";

/** How far Portcullis-Time may be from the server's clock, either way, in seconds. */
export const SIGNATURE_WINDOW_S = 60;

const ECDSA_P256 = { name: "ECDSA", namedCurve: "P-256" } as const;
const B64URL_32 = /^[A-Za-z0-9_-]{43}$/;
/** JWK members WebCrypto's exportKey adds beside the key itself; accepted when they fit, never stored. */
const TOLERATED = new Set(["ext", "key_ops", "alg", "use"]);

/** The 32 bytes of a canonical unpadded base64url string of 43 characters, or undefined. */
function coordinate(text: unknown): Uint8Array | undefined {
  if (typeof text !== "string" || !B64URL_32.test(text)) return undefined;
  const bytes = Buffer.from(text, "base64url");
  // The last character carries 4 unused bits: only one spelling of each value is accepted.
  if (bytes.length !== 32 || bytes.toString("base64url") !== text) return undefined;
  return new Uint8Array(bytes);
}

/**
 * Checks a device public key as sent at enrolment: a JSON object with `kty` "EC", `crv` "P-256" and
 * `x`, `y` each 32 bytes of canonical base64url, on the curve (checked by its equation: not every
 * runtime's WebCrypto refuses a point off it), and no private part. `ext`, `key_ops` (["verify"]), `alg` ("ES256") and `use` ("sig"), which
 * WebCrypto and JWK libraries add, are accepted when they agree and dropped; any other member is
 * refused. Returns the key reduced to the four members, or undefined. Never throws.
 */
export async function parseDevicePublicKey(input: unknown): Promise<DevicePublicKey | undefined> {
  if (input === null || typeof input !== "object" || Array.isArray(input)) return undefined;
  const jwk = input as Record<string, unknown>;
  for (const key of Object.keys(jwk)) if (!["kty", "crv", "x", "y"].includes(key) && !TOLERATED.has(key)) return undefined;
  if (jwk.kty !== "EC" || jwk.crv !== "P-256") return undefined;
  if ("ext" in jwk && typeof jwk.ext !== "boolean") return undefined;
  if ("key_ops" in jwk && !(Array.isArray(jwk.key_ops) && jwk.key_ops.every((op) => op === "verify"))) return undefined;
  if ("alg" in jwk && jwk.alg !== "ES256") return undefined;
  if ("use" in jwk && jwk.use !== "sig") return undefined;
  const x = coordinate(jwk.x);
  const y = coordinate(jwk.y);
  if (!x || !y || !isP256Point(x, y)) return undefined;
  const key: DevicePublicKey = { kty: "EC", crv: "P-256", x: jwk.x as string, y: jwk.y as string };
  try {
    await importDeviceKey(key);
  } catch {
    return undefined;
  }
  return key;
}

/** Imports a stored device key for verification. Rejects (TypeError/DOMException) for a key off the curve. */
export function importDeviceKey(key: DevicePublicKey): Promise<CryptoKey> {
  return crypto.subtle.importKey("jwk", { kty: "EC", crv: "P-256", x: key.x, y: key.y, ext: true }, ECDSA_P256, false, ["verify"]);
}

/** base64url (no padding) of SHA-256(body): the last line of the signed text. */
export function bodyDigest(body: Uint8Array): string {
  return createHash("sha256").update(body).digest("base64url");
}

/** The text a device signs: `METHOD\nPATH-WITH-QUERY\nTIME\nbase64url(SHA-256(BODY))`, as UTF-8. */
export function signedText(method: string, pathWithQuery: string, time: string, digest: string): Uint8Array {
  return new TextEncoder().encode(`${method.toUpperCase()}\n${pathWithQuery}\n${time}\n${digest}`);
}

/** Decodes a Portcullis-Signature value: canonical base64url of exactly 64 bytes, or undefined. */
export function decodeSignature(text: string): Uint8Array | undefined {
  if (!/^[A-Za-z0-9_-]{86}$/.test(text)) return undefined;
  const bytes = Buffer.from(text, "base64url");
  if (bytes.length !== 64 || bytes.toString("base64url") !== text) return undefined;
  return new Uint8Array(bytes);
}

/** ECDSA P-256 / SHA-256 verification of a P1363 (r ‖ s) signature. False on any failure; never throws. */
export async function verifyDeviceSignature(key: CryptoKey, signature: Uint8Array, text: Uint8Array): Promise<boolean> {
  try {
    return await crypto.subtle.verify({ name: "ECDSA", hash: "SHA-256" }, key, signature as Uint8Array<ArrayBuffer>, text as Uint8Array<ArrayBuffer>);
  } catch {
    return false;
  }
}

/** What identifies a signature in the replay records: its r half, base64url (see the file comment). */
export function signatureId(signature: Uint8Array): string {
  return Buffer.from(signature.subarray(0, 32)).toString("base64url");
}

/**
 * A device ID: 128 random bits, base64url (22 characters), never starting with "-": administrators
 * pass it on the command line (`device remove ID`), where a leading dash reads as an option.
 */
export function newDeviceId(random: (n: number) => Uint8Array): string {
  for (;;) {
    const id = Buffer.from(random(16)).toString("base64url");
    if (!id.startsWith("-")) return id;
  }
}

/** The shape of a device ID (Portcullis-Device, `device remove ID`). */
export const DEVICE_ID = /^[A-Za-z0-9_-]{22}$/;

/** An enrolment code: 128 random bits, base64url (22 characters). It travels only in the link's fragment and the enrolment body. */
export function newEnrolmentCode(random: (n: number) => Uint8Array): string {
  return Buffer.from(random(16)).toString("base64url");
}

/** The shape of an enrolment code. */
export const ENROLMENT_CODE = /^[A-Za-z0-9_-]{22}$/;

/** What the store keeps of an enrolment code: its SHA-256, hex. */
export function hashEnrolmentCode(code: string): string {
  return createHash("sha256").update(code, "utf8").digest("hex");
}
