// Magic Link secrets: the link token (256 random bits, only its SHA-256 stored), the session ID, the
// per-session CSRF token (an HMAC of the link token) and the number-matching decoys.

import { createHash, createHmac, timingSafeEqual } from "node:crypto";

/** Random bytes in a link token: 256 bits (the brief asks for at least 128). */
export const LINK_TOKEN_BYTES = 32;
/** A link token as it appears in `/ml/{token}`: 43 base64url characters. */
export const LINK_TOKEN_PATTERN = /^[A-Za-z0-9_-]{43}$/;

/** A fresh link token (base64url) from `random`. Throws TypeError when `random` returns too few bytes. */
export function generateLinkToken(random: (n: number) => Uint8Array): string {
  const bytes = random(LINK_TOKEN_BYTES);
  if (bytes.length !== LINK_TOKEN_BYTES) throw new TypeError(`random source returned ${bytes.length} bytes, not ${LINK_TOKEN_BYTES}`);
  return Buffer.from(bytes).toString("base64url");
}

/** A fresh internal session ID (128 bits, base64url); never sent to the phone. */
export function generateSessionId(random: (n: number) => Uint8Array): string {
  const bytes = random(16);
  if (bytes.length !== 16) throw new TypeError(`random source returned ${bytes.length} bytes, not 16`);
  return Buffer.from(bytes).toString("base64url");
}

/** SHA-256 hex of a link token: what the store keeps and looks sessions up by. */
export function hashLinkToken(token: string): string {
  return createHash("sha256").update(token, "utf8").digest("hex");
}

/**
 * The CSRF token for the approval forms of one link: HMAC-SHA256(secret, "csrf:" + link token),
 * base64url. Bound to the session (a token for one link is useless on another) and needs no storage.
 */
export function csrfToken(secret: Uint8Array, linkToken: string): string {
  return createHmac("sha256", secret).update(`csrf:${linkToken}`, "utf8").digest("base64url");
}

/** Constant-time check of a presented CSRF token (false for a missing or differently sized one). */
export function verifyCsrfToken(secret: Uint8Array, linkToken: string, presented: string | undefined): boolean {
  if (typeof presented !== "string") return false;
  const want = Buffer.from(csrfToken(secret, linkToken), "utf8");
  const got = Buffer.from(presented, "utf8");
  return want.length === got.length && timingSafeEqual(want, got);
}

/** Constant-time string equality (different lengths are unequal without comparing). */
export function constantTimeEqual(a: string, b: string): boolean {
  const x = Buffer.from(a, "utf8");
  const y = Buffer.from(b, "utf8");
  return x.length === y.length && timingSafeEqual(x, y);
}

/** Smallest and largest number a caller may ask the user to pick (`match-number`). */
export const MATCH_MIN = 10;
export const MATCH_MAX = 99;
/** Choices shown on the page: the right number and this many decoys minus one. */
export const MATCH_CHOICES = 3;

/**
 * The numbers shown for number matching: `answer` and MATCH_CHOICES-1 distinct decoys in
 * MATCH_MIN..MATCH_MAX, in an order that does not reveal which is right. Derived from
 * HMAC(secret, session ID) so that reloading the page shows the same choices (a reload must not
 * let anyone shop for a layout). Throws TypeError when `answer` is out of range.
 */
export function matchChoices(secret: Uint8Array, sessionId: string, answer: number): number[] {
  if (!Number.isInteger(answer) || answer < MATCH_MIN || answer > MATCH_MAX) throw new TypeError("match number out of range");
  const span = MATCH_MAX - MATCH_MIN + 1;
  const out = [answer];
  for (let counter = 0; out.length < MATCH_CHOICES && counter < 64; counter++) {
    const d = createHmac("sha256", secret).update(`match:${sessionId}:${counter}`).digest();
    const n = MATCH_MIN + (d.readUInt32BE(0) % span);
    if (!out.includes(n)) out.push(n);
  }
  const order = createHmac("sha256", secret).update(`order:${sessionId}`).digest();
  // Fisher-Yates with the HMAC bytes as the random source (bias is irrelevant for three items).
  for (let i = out.length - 1; i > 0; i--) {
    const j = order[i]! % (i + 1);
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}
