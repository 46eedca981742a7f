// Self-service sessions and CSRF tokens.
//
// A session is 256 random bits in a cookie (HttpOnly, SameSite=Strict, Secure and `__Host-` on a TLS
// listener); the store keeps only its SHA-256, with an idle and an absolute end. Forms carry a CSRF
// token: HMAC-SHA-256 under the portal's server secret of the session's cookie value, or before
// sign-in of a random pre-session cookie's value, so that a form made for one browser is refused
// in another (login CSRF included).

import { createHash, createHmac, timingSafeEqual } from "node:crypto";
import type { Context } from "hono";
import { deleteCookie, getCookie, setCookie } from "hono/cookie";
import type { HttpEnv } from "../http/types.ts";

/** The cookie names: `__Host-` (Secure, Path=/, no Domain) on a TLS listener. */
export function cookieNames(tls: boolean): { session: string; pre: string } {
  return tls ? { session: "__Host-portcullis-ss", pre: "__Host-portcullis-ss-pre" } : { session: "portcullis-ss", pre: "portcullis-ss-pre" };
}

/** SHA-256 hex of a cookie value: the store's key for a session. */
export function sessionIdHash(value: string): string {
  return createHash("sha256").update(value, "utf8").digest("hex");
}

const COOKIE_VALUE = /^[A-Za-z0-9_-]{43}$/;

/** A cookie's value when it has the shape this portal gives (256 bits, base64url), else undefined. */
export function readCookie(c: Context<HttpEnv>, name: string): string | undefined {
  const v = getCookie(c, name);
  return v !== undefined && COOKIE_VALUE.test(v) ? v : undefined;
}

/** Sets a cookie the browser keeps for the session only (no Max-Age: the store decides the end). */
export function writeCookie(c: Context<HttpEnv>, name: string, value: string, tls: boolean): void {
  setCookie(c, name, value, { path: "/", httpOnly: true, secure: tls, sameSite: "Strict" });
}

export function clearCookie(c: Context<HttpEnv>, name: string, tls: boolean): void {
  deleteCookie(c, name, { path: "/", secure: tls });
}

/** 256 random bits, base64url (43 characters). */
export function newCookieValue(random: (n: number) => Uint8Array): string {
  return Buffer.from(random(32)).toString("base64url");
}

/** The CSRF token of the forms shown to the holder of cookie `value` (`purpose` keeps pre-session and session tokens apart). */
export function csrfToken(secret: Uint8Array, purpose: "pre" | "session", value: string): string {
  return createHmac("sha256", secret).update(`portcullis self-service csrf\n${purpose}\n${value}`).digest("base64url");
}

/** Constant-time check of a submitted CSRF token. */
export function csrfValid(secret: Uint8Array, purpose: "pre" | "session", value: string | undefined, submitted: unknown): boolean {
  if (value === undefined || typeof submitted !== "string") return false;
  const want = Buffer.from(csrfToken(secret, purpose, value));
  const got = Buffer.from(submitted);
  return got.length === want.length && timingSafeEqual(got, want);
}
