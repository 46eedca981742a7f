// The switch protocol: JSON frames over one WebSocket that the appliance opens to the relay.
//
// Every frame is a JSON object `{"id":N,"t":TYPE,…}` of at most MAX_FRAME_BYTES. `id` is a
// positive integer that grows with every frame a side sends on a connection; a receiver drops
// (and counts) a frame whose id is not above the last one it accepted from that side, so a frame
// cannot be replayed or reordered on a connection. A reply names the frame it answers in `re`.
//
// Authentication, after TLS (the appliance checks the relay's certificate against its ca_file):
//   relay → appliance  {"t":"challenge","nonce":B64URL(32 random bytes),"public_url":URL}
//   appliance → relay  {"t":"hello","name":NAME,"sig":B64URL, "enrol"?:{"token":TOKEN,"public_key":B64URL}}
//   relay → appliance  {"t":"welcome","name":NAME,"public_url":URL}   or the connection is closed (4401)
// `sig` is the appliance's Ed25519 signature over authPayload(nonce, public_url, name). With
// `enrol`, the single-use token registers `public_key`, and the signature proves the appliance
// holds its private half. Afterwards the appliance proves itself by the key alone.
//
// After the welcome, the appliance sends `deliver`, `push` and `ping` requests (answered by
// `result`, `push-res`, `pong`), answers the relay's `http` page and app-API requests with
// `http-res`, relays the app's event stream it is asked for with `stream` as `stream-res` (status,
// headers), `stream-data` (text) and `stream-end` (the relay's `stream-close`: the phone left),
// and announces the hashes of its live approver-app enrolment codes with
// `{"t":"enrolments","codes":[{"hash":HEX64,"expires":UNIX_MS}…]}` (no answer), which the relay
// uses to route each enrolment call to the appliance that made its code.

import { createHash, createPrivateKey, createPublicKey, sign, timingSafeEqual, verify, type KeyObject } from "node:crypto";

/** Largest frame either side accepts (bytes of UTF-8 JSON); a larger one closes the connection (1009). */
export const MAX_FRAME_BYTES = 64 * 1024;

/** Close codes: the relay refused the appliance's credentials, or the appliance was removed. */
export const CLOSE_UNAUTHORIZED = 4401;
export const CLOSE_REMOVED = 4403;
export const CLOSE_PROTOCOL = 4400;

/** An appliance name: how the relay's administrator calls it (letters, digits, '_' and '-'). */
export const APPLIANCE_NAME = /^[A-Za-z0-9_-]{1,64}$/;

/** How long a link sent through the relay is routed to its appliance (the longest approval lifetime, 5 min, with room). */
export const LINK_ROUTE_MS = 15 * 60_000;

/** Where the appliance's WebSocket connects on the relay. */
export const SWITCH_PATH = "/switch/v1";

export type Frame = { id: number; t: string; re?: number; [k: string]: unknown };

/** The text an appliance signs to authenticate: bound to this connection's nonce, the relay and the name. */
export function authPayload(nonce: string, publicUrl: string, name: string): Buffer {
  return Buffer.from(`portcullis-switch-v1\n${nonce}\n${publicUrl}\n${name}`, "utf8");
}

const PKCS8_ED25519 = Buffer.from("302e020100300506032b657004220420", "hex");
const SPKI_ED25519 = Buffer.from("302a300506032b6570032100", "hex");

/** The appliance's key pair from its 32-byte seed (kept sealed in the appliance's store). */
export function keyFromSeed(seed: Uint8Array): { privateKey: KeyObject; publicKey: string } {
  if (seed.length !== 32) throw new TypeError("switch key seed must be 32 bytes");
  const privateKey = createPrivateKey({ key: Buffer.concat([PKCS8_ED25519, seed]), format: "der", type: "pkcs8" });
  const spki = createPublicKey(privateKey).export({ format: "der", type: "spki" });
  return { privateKey, publicKey: Buffer.from(spki.subarray(SPKI_ED25519.length)).toString("base64url") };
}

export function signAuth(privateKey: KeyObject, nonce: string, publicUrl: string, name: string): string {
  return sign(null, authPayload(nonce, publicUrl, name), privateKey).toString("base64url");
}

/** Verifies an appliance's signature with its registered raw public key (base64url); false for anything malformed. */
export function verifyAuth(publicKey: string, sig: string, nonce: string, publicUrl: string, name: string): boolean {
  try {
    const raw = Buffer.from(publicKey, "base64url");
    const s = Buffer.from(sig, "base64url");
    if (raw.length !== 32 || s.length !== 64) return false;
    const key = createPublicKey({ key: Buffer.concat([SPKI_ED25519, raw]), format: "der", type: "spki" });
    return verify(null, authPayload(nonce, publicUrl, name), key, s);
  } catch {
    return false;
  }
}

/** An enrolment token: `NAME.SECRET`; the relay stores only the secret's hash. */
export function parseToken(token: string): { name: string; secret: string } | undefined {
  const m = /^([A-Za-z0-9_-]{1,64})\.([A-Za-z0-9_-]{43})$/.exec(token);
  return m ? { name: m[1]!, secret: m[2]! } : undefined;
}

export function hashSecret(secret: string): string {
  return createHash("sha256").update(`portcullis-switch-token:${secret}`).digest("hex");
}

/** Constant-time comparison of two hex hashes. */
export function sameHash(a: string, b: string): boolean {
  const x = Buffer.from(a, "utf8");
  const y = Buffer.from(b, "utf8");
  return x.length === y.length && timingSafeEqual(x, y);
}

/**
 * Parses one received frame: a JSON object with a positive integer id above `lastId`. Undefined
 * for anything else (too large, not JSON, a replayed or reordered id).
 */
export function parseFrame(data: string | Uint8Array | ArrayBuffer, lastId: number): Frame | undefined {
  const text = typeof data === "string" ? data : new TextDecoder().decode(data);
  if (text.length > MAX_FRAME_BYTES) return undefined;
  let f: unknown;
  try {
    f = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (typeof f !== "object" || f === null || Array.isArray(f)) return undefined;
  const frame = f as Frame;
  if (!Number.isSafeInteger(frame.id) || frame.id <= lastId || typeof frame.t !== "string") return undefined;
  return frame;
}

/** Numbers frames for one side of one connection. */
export class FrameCounter {
  private next = 1;
  frame(t: string, fields: Record<string, unknown> = {}): { id: number; text: string } {
    const id = this.next++;
    return { id, text: JSON.stringify({ ...fields, id, t }) };
  }
}

/** Back-off before reconnect attempt `n` (0-based): doubling from 500 ms, capped at 30 s, with full jitter above half. */
export function backoffMs(n: number, random: () => number = Math.random): number {
  const ceiling = Math.min(30_000, 500 * 2 ** Math.min(n, 10));
  return Math.round(ceiling / 2 + (random() * ceiling) / 2);
}

/** Link tokens in a text sent through the relay, for links under its public_url. */
export function linkTokensIn(text: string, publicUrl: string): string[] {
  const base = publicUrl.replace(/\/+$/, "") + "/ml/";
  const out: string[] = [];
  let at = text.indexOf(base);
  while (at >= 0) {
    const m = /^[A-Za-z0-9_-]{43}/.exec(text.slice(at + base.length));
    if (m) out.push(m[0]);
    at = text.indexOf(base, at + base.length);
  }
  return out;
}
